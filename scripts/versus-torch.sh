#!/usr/bin/env bash
# rnnsearch against the PyTorch yardstick at equal training time, one after the other on this
# machine: ../shared/anchors/torch_ref.py (its default model) trains for MINUTES, then
# `rnnsearch train --config configs/multi30k-SRC-TGT.toml` with train.time_budget_min = MINUTES;
# both tools' test_2016_flickr translations (best checkpoint on val, greedy and beam 5) are then
# scored by the same scorer, cased and lowercased.
#
# Usage: scripts/versus-torch.sh [SRC TGT [MINUTES]]      (default: en de 90; takes 2 × MINUTES
#        plus decoding, and needs the machine to itself: torch slows down many times when
#        another process holds a core)
# Environment:
#   TORCH_PY   python with torch (default: ~/.venvs/torchref/bin/python; see the anchors README)
#   ANCHORS    folder holding torch_ref.py (default: ../shared/anchors)
#   OUT        where both runs go (default: runs/versus-torch-SRC-TGT)
#   THREADS    threads for both (default: 2)
#   RNNSEARCH_MINUTES  rnnsearch's budget when it is to train for less than torch_ref (default
#              MINUTES): a win with less time is the stronger result, and the pair then fits
#              a session (90 + 45 minutes, say, against 90 + 90)
#   SKIP_TORCH=1 or SKIP_RNNSEARCH=1   reuse that half from an earlier run in OUT
# Data: data/multi30k, filled by scripts/fetch-multi30k.sh (the configs read it there).
set -euo pipefail

cd "$(dirname "$0")/.."
SRC=${1:-en}
TGT=${2:-de}
MINUTES=${3:-90}
TORCH_PY=${TORCH_PY:-$HOME/.venvs/torchref/bin/python}
ANCHORS=${ANCHORS:-../shared/anchors}
OUT=${OUT:-runs/versus-torch-$SRC-$TGT}
THREADS=${THREADS:-2}
RNNSEARCH_MINUTES=${RNNSEARCH_MINUTES:-$MINUTES}
DATA=data/multi30k
CONFIG=configs/multi30k-$SRC-$TGT.toml
. scripts/lib.sh

[ -f "$CONFIG" ] || { echo "error: $CONFIG not found (no config for $SRC→$TGT)" >&2; exit 1; }
need_bin
[ -f "$DATA/test_2016_flickr.$TGT.gz" ] ||
    { echo "error: $DATA/test_2016_flickr.$TGT.gz not found: run scripts/fetch-multi30k.sh" >&2; exit 1; }
if [ "${SKIP_TORCH:-0}" != 1 ]; then
    [ -x "$TORCH_PY" ] || { echo "error: $TORCH_PY not found (see $ANCHORS/README.md)" >&2; exit 1; }
    [ -f "$ANCHORS/torch_ref.py" ] || { echo "error: $ANCHORS/torch_ref.py not found (set ANCHORS)" >&2; exit 1; }
fi
mkdir -p "$OUT"

if [ "${SKIP_TORCH:-0}" != 1 ]; then
    echo "== torch_ref: $MINUTES min of training ($(date -u +%FT%TZ))"
    "$TORCH_PY" "$ANCHORS/torch_ref.py" --data "$DATA" --src "$SRC" --tgt "$TGT" --threads "$THREADS" \
        --epochs 1000 --time-budget-min "$MINUTES" --out "$OUT/torch" | tee "$OUT/torch.log"
fi
if [ "${SKIP_RNNSEARCH:-0}" != 1 ]; then
    echo "== rnnsearch: $RNNSEARCH_MINUTES min of training ($(date -u +%FT%TZ))"
    "$BIN" train --config "$CONFIG" --threads "$THREADS" --set "train.time_budget_min=$RNNSEARCH_MINUTES" \
        --out "$OUT/rnnsearch" 2>&1 | tee "$OUT/rnnsearch.log"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zcat "$DATA/test_2016_flickr.$SRC.gz" >"$work/src"
zcat "$DATA/test_2016_flickr.$TGT.gz" >"$work/ref"
for beam in 1 5; do
    quietly "$BIN" translate --model "$OUT/rnnsearch" --beam "$beam" --threads "$THREADS" \
        --input "$work/src" --output "$work/rnnsearch.beam$beam"
    cp "$OUT/torch/test_2016_flickr.beam$beam.$TGT" "$work/torch.beam$beam"
done

# bleu HYP [--lowercase]: the BLEU score alone
bleu() { scores "$1" "$work/ref" --metrics bleu "${@:2}"; }
echo "test_2016_flickr $SRC→$TGT after $MINUTES min of training for torch_ref, $RNNSEARCH_MINUTES for rnnsearch (BLEU, 13a):"
printf '%-10s %14s %14s %14s %14s\n' tool "greedy cased" "greedy lower" "beam 5 cased" "beam 5 lower"
for tool in torch rnnsearch; do
    # Each score in a variable first: a failing command substitution inside printf's arguments
    # would not stop the script.
    greedy=$(bleu "$work/$tool.beam1")
    greedy_lc=$(bleu "$work/$tool.beam1" --lowercase)
    beam=$(bleu "$work/$tool.beam5")
    beam_lc=$(bleu "$work/$tool.beam5" --lowercase)
    printf '%-10s %14s %14s %14s %14s\n' "$tool" "$greedy" "$greedy_lc" "$beam" "$beam_lc"
done
