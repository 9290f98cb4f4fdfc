#!/usr/bin/env bash
# rnnsearch against the PyTorch yardstick (../shared/anchors/torch_ref.py), side by side in one run:
# training target tokens/s (rnnsearch with both gradient engines), greedy and beam-5 decoding
# sentences/s, and each command's peak RSS, for the multi30k-en-de model size and the paper's.
#
# Usage: scripts/bench.sh [multi30k|paper ...]      (default: both)
# Environment:
#   TORCH_PY      python with torch (default: ~/.venvs/torchref/bin/python; see the anchors README)
#   ANCHORS       folder holding torch_ref.py (default: ../shared/anchors)
#   THREADS       threads for both tools (default: 2)
#   STEPS         timed training steps at the multi30k size (default: 20; a quarter of that at
#                 the paper size, whose steps take ~25 times longer; torch_ref gets the same)
#   SKIP_BUILD=1  use the existing release binary
# Run it on a quiet machine: with OpenMP busy-waiting, torch slows down many times when another
# process holds a core. Prints one line per measurement and the rnnsearch/PyTorch ratios.
set -euo pipefail

cd "$(dirname "$0")/.."
TORCH_PY=${TORCH_PY:-$HOME/.venvs/torchref/bin/python}
ANCHORS=${ANCHORS:-../shared/anchors}
THREADS=${THREADS:-2}
STEPS=${STEPS:-20}
BIN=${CARGO_TARGET_DIR:-target}/release/rnnsearch
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(multi30k paper)

[ -x "$TORCH_PY" ] || { echo "error: $TORCH_PY not found (see $ANCHORS/README.md)" >&2; exit 1; }
[ -f "$ANCHORS/torch_ref.py" ] || { echo "error: $ANCHORS/torch_ref.py not found (set ANCHORS)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    # --workspace: building one package alone resolves other features and rebuilds burn
    cargo build --release --workspace
fi

# measure NAME CMD...: runs CMD, prints its "bench:" line, records the figure and peak RSS
declare -A FIGURE
measure() {
    local name=$1; shift
    local out rss
    out=$(/usr/bin/time -f 'peak_rss_kb=%M' "$@" 2>&1)
    rss=$(grep -o 'peak_rss_kb=[0-9]*' <<<"$out" | cut -d= -f2)
    local line
    line=$(grep '^bench:' <<<"$out") || { echo "$out" >&2; echo "error: $name printed no bench line" >&2; exit 1; }
    FIGURE[$name]=$(awk '{print $2}' <<<"$line")
    printf '%-28s %s  [peak RSS %d MiB]\n' "$name" "${line#bench: }" $((rss / 1024))
}

ratio() { awk -v a="${FIGURE[$1]}" -v b="${FIGURE[$2]}" 'BEGIN { printf "%.2f", a / b }'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); threads=$THREADS; $(date -u +%F)"
for size in "${SIZES[@]}"; do
    steps=$STEPS batches=10
    case $size in
        multi30k) dims=(--vocab 8000 --emb 256 --hidden 256 --att 256) ;;
        # the paper: embeddings 620, 1000 units per direction and in the decoder, attention 1000;
        # maxout = --emb units (torch_ref has no separate maxout size), vocabulary 8000
        paper) dims=(--vocab 8000 --emb 620 --hidden 1000 --att 1000); steps=$(( STEPS / 4 > 2 ? STEPS / 4 : 2 )) batches=3 ;;
        *) echo "error: unknown size $size (multi30k or paper)" >&2; exit 1 ;;
    esac
    shape=(--batch-tokens 2000)
    echo "== $size: ${dims[*]} ${shape[*]}, 16 → 16 tokens"
    measure "$size torch train" "$TORCH_PY" "$ANCHORS/torch_ref.py" --bench --threads "$THREADS" "${dims[@]}" "${shape[@]}" \
        --bench-src-len 16 --bench-tgt-len 16 --bench-steps "$steps" --bench-warmup 2
    measure "$size rnnsearch train fused" "$BIN" bench --threads "$THREADS" "${dims[@]}" "${shape[@]}" \
        --src-len 16 --tgt-len 16 --steps "$steps" --warmup 2 --engine fused
    measure "$size rnnsearch train burn" "$BIN" bench --threads "$THREADS" "${dims[@]}" "${shape[@]}" \
        --src-len 16 --tgt-len 16 --steps "$(( steps / 2 > 2 ? steps / 2 : 2 ))" --warmup 1 --engine burn
    for decode in greedy beam5; do
        measure "$size torch $decode" "$TORCH_PY" scripts/torch-decode-bench.py --anchors "$ANCHORS" \
            --decode "$decode" --threads "$THREADS" "${dims[@]}" "${shape[@]}" --src-len 16 --tgt-len 16 \
            --batches "$batches"
        measure "$size rnnsearch $decode" "$BIN" bench --threads "$THREADS" "${dims[@]}" "${shape[@]}" \
            --src-len 16 --tgt-len 16 --decode "$decode" --steps "$batches" --warmup 1
    done
    echo "ratios rnnsearch/PyTorch ($size): train fused $(ratio "$size rnnsearch train fused" "$size torch train")×," \
        "train burn $(ratio "$size rnnsearch train burn" "$size torch train")×," \
        "greedy $(ratio "$size rnnsearch greedy" "$size torch greedy")×," \
        "beam5 $(ratio "$size rnnsearch beam5" "$size torch beam5")×"
done
