#!/usr/bin/env bash
# same-weights.sh BIN_BEFORE [BIN_AFTER] [STEPS]: trains the dates demo with two builds of
# rnnsearch and checks that they write the same weights, bit for bit — the check that a
# refactoring kept behaviour. Both engines (fused and burn) are trained, one thread each so that
# the products' summation order is fixed, for STEPS steps (default 300) with a validation in the
# middle (so best, last, the schedule and the metrics log are exercised too).
#
#   cp target/release/rnnsearch /tmp/rnnsearch-before   # before the change
#   ... change, cargo build --release ...
#   scripts/same-weights.sh /tmp/rnnsearch-before
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

before=${1:?usage: same-weights.sh BIN_BEFORE [BIN_AFTER] [STEPS]}
after=${2:-$BIN}
steps=${3:-300}
for bin in "$before" "$after"; do
    [ -x "$bin" ] || { echo "error: $bin is not an executable" >&2; exit 1; }
done

# tensor_data FILE.bpk: the header's length and the tensors' bytes, without the header itself,
# whose parameter ids are drawn afresh by every run. Burnpack: "NRUB", a u16 version, a u32
# little-endian header length, the CBOR header (names, shapes, offsets, ids), the data.
tensor_data() {
    python3 -c 'import struct, sys
d = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<I", d[6:10])
sys.stdout.buffer.write(d[:10] + d[10 + n:])' "$1"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
for engine in fused burn; do
    for side in before after; do
        bin=$before; [ "$side" = after ] && bin=$after
        RAYON_NUM_THREADS=1 quietly "$bin" train --out "$work/$engine-$side" --threads 1 \
            --set "train.engine=\"$engine\"" --set "train.max_steps=$steps" \
            --set "train.valid_every=$((steps / 2))" --set train.time_budget_min=0 \
            --set train.samples=0
    done
    for file in checkpoints/best/model.bpk checkpoints/last/model.bpk; do
        a="$work/$engine-before/$file" b="$work/$engine-after/$file"
        if [ ! -f "$a" ] || [ ! -f "$b" ]; then
            echo "error: $engine: $file missing in a run" >&2; status=1
        elif [ "$(tensor_data "$a" | sha256sum)" = "$(tensor_data "$b" | sha256sum)" ]; then
            echo "$engine: $file: same tensors ($(tensor_data "$a" | sha256sum | cut -c1-16))"
        else
            echo "$engine: $file: tensors DIFFER" >&2; status=1
        fi
    done
    if cmp -s "$work/$engine-before/test.json" "$work/$engine-after/test.json"; then
        echo "$engine: test.json identical"
    else
        echo "$engine: test.json DIFFERS" >&2; status=1
    fi
    # The per-step losses, validation figures and decisions (not the timings).
    for side in before after; do
        python3 - "$work/$engine-$side/metrics.jsonl" >"$work/$engine-$side.metrics" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(sorted((k, v) for k, v in r.items() if not any(t in k for t in ("time", "per_s", "elapsed", "secs"))))
PY
    done
    if cmp -s "$work/$engine-before.metrics" "$work/$engine-after.metrics"; then
        echo "$engine: metrics.jsonl identical (timings aside)"
    else
        echo "$engine: metrics.jsonl DIFFERS:" >&2
        diff "$work/$engine-before.metrics" "$work/$engine-after.metrics" | head -5 >&2 || true
        status=1
    fi
done
exit $status
