#!/usr/bin/env bash
# Beam size and length normalisation tuned on Multi30k val (never on a test set): translates val
# with every pair of BEAMS × ALPHAS, prints cased BLEU per pair and the best pair last, as the
# BEAM and ALPHA to hand scripts/results.sh (one run) or to `translate --beam --alpha`.
#
# Usage: scripts/tune-decoding.sh RUN_DIR[,RUN_DIR...] SRC TGT [CHECKPOINT]
#   e.g. runs/multi30k-en-de en de; several runs decode as one ensemble; CHECKPOINT left out:
#   the model each run's test.json names (else best)
# Environment: MULTI30K_DIR (default data/multi30k), BEAMS (default "5 10"), ALPHAS (default
#   "0.6 0.8 1.0 1.2 1.5"), THREADS (default 2)
set -euo pipefail

cd "$(dirname "$0")/.."
RUN=${1:?usage: scripts/tune-decoding.sh RUN_DIR[,RUN_DIR...] SRC TGT [CHECKPOINT]}
SRC=${2:?source language}
TGT=${3:?target language}
CKPT=${4:-}
MULTI30K_DIR=${MULTI30K_DIR:-data/multi30k}
BEAMS=${BEAMS:-5 10}
ALPHAS=${ALPHAS:-0.6 0.8 1.0 1.2 1.5}
THREADS=${THREADS:-2}
. scripts/lib.sh
need_bin
IFS=, read -ra runs <<<"$RUN"
for run in "${runs[@]}"; do
    [ -n "$run" ] || { echo "error: an empty run directory in '$RUN': list runs as runs/a,runs/b" >&2; exit 1; }
    [ -d "$run/checkpoints" ] || { echo "error: $run/checkpoints not found: not a run directory" >&2; exit 1; }
done
checkpoint=()
[ -z "$CKPT" ] || checkpoint=(--checkpoint "$CKPT")
for lang in "$SRC" "$TGT"; do
    [ -f "$MULTI30K_DIR/val.$lang.gz" ] ||
        { echo "error: $MULTI30K_DIR/val.$lang.gz not found (scripts/fetch-multi30k.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
zcat "$MULTI30K_DIR/val.$SRC.gz" >"$work/src"
zcat "$MULTI30K_DIR/val.$TGT.gz" >"$work/ref"

echo "run $RUN, checkpoint ${CKPT:-as test.json names}, $SRC→$TGT, val: cased BLEU by beam and alpha"
best_bleu=-1 best_beam= best_alpha=
for beam in $BEAMS; do
    for alpha in $ALPHAS; do
        quietly "$BIN" translate --model "$RUN" ${checkpoint[@]+"${checkpoint[@]}"} --beam "$beam" --alpha "$alpha" \
            --threads "$THREADS" --input "$work/src" --output "$work/hyp"
        bleu=$(scores "$work/hyp" "$work/ref" --metrics bleu)
        printf 'beam %3s alpha %4s  BLEU %6s\n' "$beam" "$alpha" "$bleu"
        if awk -v a="$bleu" -v b="$best_bleu" 'BEGIN { exit !(a > b) }'; then
            best_bleu=$bleu best_beam=$beam best_alpha=$alpha
        fi
    done
done
echo "best on val: BEAM=$best_beam ALPHA=$best_alpha (BLEU $best_bleu)"
