#!/usr/bin/env bash
# scale.sh [SIZES...]: how `prepare` and `train` behave as the corpus grows (a benchmark, not a
# test). For each size (default 1000000 10000000 pairs) it makes a synthetic corpus from
# Multi30k's training pairs repeated, each copy's lines made distinct by a numbered token, then
# reports:
#   prepare: wall time, pairs/s, peak RSS, bytes on disk;
#   train:   start-up (launch to the first update: the dataset opened and checked, the model
#            built, the first epoch planned) and peak RSS over its first 200 steps;
#   the Python yardstick: the same lines encoded by Hugging Face tokenizers' own
#   `Tokenizer.encode_batch` with the dataset's tokenizer.json (encoding speed only).
# Needs MULTI30K_DIR (default ../shared/data/multi30k), python3 with `tokenizers` (installed with
# pip when missing), GNU time, and a release build. Everything goes to $SCALE_DIR (default
# /tmp/rnnsearch-scale), which it removes at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_bin

sizes=("${@:-1000000 10000000}")
read -r -a sizes <<<"${sizes[*]}"
m30k=${MULTI30K_DIR:-../shared/data/multi30k}
work=${SCALE_DIR:-/tmp/rnnsearch-scale}
mkdir -p "$work"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
python3 -c 'import tokenizers' 2>/dev/null || pip install -q tokenizers >&2

rss_mib() { awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$1"; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores;" \
     "AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no)"
printf '%-10s | %-28s | %-22s | %-24s\n' pairs "prepare (s, pairs/s, RSS, disk)" \
    "train (start-up, RSS)" "Python encode_batch against prepare's encoding pass"

for n in "${sizes[@]}"; do
    dir="$work/$n"
    rm -rf "$dir" && mkdir -p "$dir"
    # The corpus: copy k of pair j is "<line j> k" on both sides.
    for side in en de; do
        gzip -dc "$m30k/train.$side.gz" | awk -v n="$n" '
            { line[NR] = $0 } END {
                for (i = 0; i < n; i++) print line[i % NR + 1] " " int(i / NR)
            }' >"$dir/train.$side"
        gzip -dc "$m30k/val.$side.gz" >"$dir/valid.$side"
    done
    cat >"$dir/config.toml" <<TOML
[data]
corpus = "parallel"
train_src = "$dir/train.en"
train_tgt = "$dir/train.de"
valid_src = "$dir/valid.en"
valid_tgt = "$dir/valid.de"
vocab_size = 8000
split_punctuation = true
[model]
embedding = 256
hidden = 256
decoder_hidden = 256
attention = 256
output = 256
[train]
max_steps = 200
valid_every = 100000
log_every = 1
samples = 0
test_beam = 1
TOML

    start=$(date +%s.%N)
    /usr/bin/time -v "$BIN" prepare --config "$dir/config.toml" --out "$dir/data" \
        >"$dir/prepare.out" 2>"$dir/prepare.time"
    prep_s=$(echo "$(date +%s.%N) - $start" | bc)
    prep_rss=$(rss_mib "$dir/prepare.time")
    disk=$(du -sb "$dir/data" | cut -f1)

    # train: start-up is launch to the first update (the log line that announces the first
    # epoch's plan comes right before it)
    start=$(date +%s.%N)
    /usr/bin/time -v "$BIN" train --config "$dir/config.toml" --data "$dir/data" \
        --out "$dir/run" >"$dir/train.out" 2>"$dir/train.time" &
    pid=$!
    first=""
    while kill -0 "$pid" 2>/dev/null; do
        if grep -qs '^epoch 1: ' "$dir/run/train.log"; then first=$(date +%s.%N); break; fi
        sleep 0.02
    done
    wait "$pid" || { cat "$dir/train.time" >&2; exit 1; }
    startup=$(echo "$first - $start" | bc)
    train_rss=$(rss_mib "$dir/train.time")

    py_s=$(python3 - "$dir/data/tokenizer.json" "$dir/train.en" "$dir/train.de" <<'PY'
import sys, time, unicodedata
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
def norm(line):
    return " ".join(unicodedata.normalize("NFC", line).split())
total = 0.0
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        while True:
            chunk = [norm(l) for _, l in zip(range(1 << 15), f)]
            if not chunk:
                break
            t = time.perf_counter()
            tok.encode_batch(chunk, add_special_tokens=False)
            total += time.perf_counter() - t
print(f"{total:.1f}")
PY
)
    phases=$(python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
print("%.1f %.1f" % (m["vocab_seconds"], m["encode_seconds"]))' "$dir/data/manifest.json")
    read -r vocab_s encode_s <<<"$phases"
    printf '%-10s | %6.1f s %9.0f/s %5s MiB %5.0f MiB | %5.2f s %6s MiB | %6s s against %s s\n' \
        "$n" "$prep_s" "$(echo "$n / $prep_s" | bc -l)" "$prep_rss" \
        "$(echo "$disk / 1048576" | bc -l)" "$startup" "$train_rss" "$py_s" "$encode_s"
    echo "           prepare's phases: vocabulary $vocab_s s (sampling pass and BPE), encoding $encode_s s (read, encode, write)"
    rm -rf "$dir/train.en" "$dir/train.de"
done
