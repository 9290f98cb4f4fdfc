#!/usr/bin/env bash
# The README's results row of a trained Multi30k run: test_2016_flickr (and val) BLEU and chrF,
# cased and lowercased, greedy and beam, with the run's training wall time and target tokens/s.
#
# Usage: scripts/results.sh RUN_DIR SRC TGT [CHECKPOINT]      e.g. runs/multi30k-en-de en de best
# Environment: MULTI30K_DIR (default data/multi30k), BEAM (default 5), ALPHA (default: the run's
#   train.alpha), THREADS (default 2), SPLITS (default "val test_2016_flickr")
set -euo pipefail

cd "$(dirname "$0")/.."
RUN=${1:?usage: scripts/results.sh RUN_DIR SRC TGT [CHECKPOINT]}
SRC=${2:?source language}
TGT=${3:?target language}
CKPT=${4:-best}
MULTI30K_DIR=${MULTI30K_DIR:-data/multi30k}
BEAM=${BEAM:-5}
THREADS=${THREADS:-2}
SPLITS=${SPLITS:-val test_2016_flickr}
. scripts/lib.sh
need_bin
[ -f "$RUN/metrics.jsonl" ] || { echo "error: $RUN/metrics.jsonl not found: not a run directory" >&2; exit 1; }
alpha=()
[ -z "${ALPHA:-}" ] || alpha=(--alpha "$ALPHA")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "run $RUN, checkpoint $CKPT, $SRC→$TGT, beam $BEAM ${alpha[*]}"
for split in $SPLITS; do
    zcat "$MULTI30K_DIR/$split.$SRC.gz" >"$work/src"
    zcat "$MULTI30K_DIR/$split.$TGT.gz" >"$work/ref"
    for beam in 1 "$BEAM"; do
        start=$(date +%s.%N)
        quietly "$BIN" translate --model "$RUN" --checkpoint "$CKPT" --beam "$beam" "${alpha[@]}" \
            --threads "$THREADS" --input "$work/src" --output "$work/hyp.$beam"
        end=$(date +%s.%N)
        rate=$(awk -v n="$(wc -l <"$work/src")" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')
        cased=$(scores "$work/hyp.$beam" "$work/ref")
        lowercased=$(scores "$work/hyp.$beam" "$work/ref" --lowercase)
        read -r bleu chrf <<<"$cased"
        read -r lbleu lchrf <<<"$lowercased"
        name=$([ "$beam" = 1 ] && echo greedy || echo "beam $beam")
        printf '%-18s %-7s BLEU %6s chrF %6s | lowercased BLEU %6s chrF %6s | %s sentences/s\n' \
            "$split" "$name" "$bleu" "$chrf" "$lbleu" "$lchrf" "$rate"
    done
done

# Training wall time and throughput from metrics.jsonl (the last record holds the totals).
python3 - "$RUN/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [r for r in rows if r.get("tokens_per_s") is not None]
val = [r for r in rows if r.get("val_bleu") is not None]
last = rows[-1]
rate = sum(r["tokens_per_s"] for r in train) / max(len(train), 1)
print(f"training: {last.get('step')} updates, {last.get('elapsed_s', 0) / 60:.1f} min wall time, "
      f"mean {rate:.0f} target tokens/s over the logged windows")
best = max(val, key=lambda r: r["val_bleu"]) if val else None
if best:
    print(f"best validation BLEU {best['val_bleu']:.2f} at step {best['step']} (epoch {best.get('epoch')})")
print("validation BLEU (greedy) by step (epoch): " + ", ".join(
    f"{r['step']} ({r.get('epoch')}): {r['val_bleu']:.1f}" for r in val))
EOF
