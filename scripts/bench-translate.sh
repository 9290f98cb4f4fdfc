#!/usr/bin/env bash
# Translation speed of a trained model: sentences/s of `rnnsearch translate` on Multi30k val
# (1,014 sentences), greedy and beam 5, one sentence per batch (--batch-tokens 1) and the
# default token-budget batches, plus the greedy default/batch-1 ratio. Also checks that both
# batchings give the same output. Times whole commands (model loading included).
#
# Usage: scripts/bench-translate.sh RUN_DIR [SRC_LANG]     (default SRC_LANG: en)
# Environment: MULTI30K_DIR (default data/multi30k), THREADS (default 2), SKIP_BUILD=1
set -euo pipefail

cd "$(dirname "$0")/.."
RUN=${1:?usage: scripts/bench-translate.sh RUN_DIR [SRC_LANG]}
SRC=${2:-en}
MULTI30K_DIR=${MULTI30K_DIR:-data/multi30k}
THREADS=${THREADS:-2}
BIN=${CARGO_TARGET_DIR:-target}/release/rnnsearch
[ -f "$MULTI30K_DIR/val.$SRC.gz" ] || { echo "error: $MULTI30K_DIR/val.$SRC.gz not found (set MULTI30K_DIR)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --workspace
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zcat "$MULTI30K_DIR/val.$SRC.gz" >"$work/src"
n=$(wc -l <"$work/src")

declare -A RATE
for beam in 1 5; do
    for batching in 1 default; do
        args=(translate --model "$RUN" --beam "$beam" --threads "$THREADS" --input "$work/src"
              --output "$work/out.$beam.$batching")
        [ "$batching" = default ] || args+=(--batch-tokens "$batching")
        start=$(date +%s.%N)
        "$BIN" "${args[@]}" 2>/dev/null
        end=$(date +%s.%N)
        RATE[$beam.$batching]=$(awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", n / (b - a) }')
        printf 'beam %d, batch %-7s %8s sentences/s\n' "$beam" "$batching" "${RATE[$beam.$batching]}"
    done
    cmp -s "$work/out.$beam.1" "$work/out.$beam.default" ||
        { echo "error: beam $beam output differs between batch size 1 and the default" >&2; exit 1; }
done
echo "greedy, default batches / batch 1: $(awk -v a="${RATE[1.default]}" -v b="${RATE[1.1]}" 'BEGIN { printf "%.1f", a / b }')×;" \
     "beam 5: $(awk -v a="${RATE[5.default]}" -v b="${RATE[5.1]}" 'BEGIN { printf "%.1f", a / b }')×;" \
     "outputs identical across batchings"
