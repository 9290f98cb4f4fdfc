#!/usr/bin/env bash
# The Multi30k recipe: independently seeded models of configs/multi30k-PAIR.toml trained side by
# side on one prepared dataset (one thread each on two cores), then translated as one ensemble
# (`translate --model RUN_A,RUN_B`). Each run picks its own model on val as `train` does (best,
# the mean of its last checkpoints, or their ensemble); the ensemble of the runs is kept when it
# beats every single run on val. Prints val and test_2016_flickr BLEU and chrF, cased and
# lowercased, for every run and the ensemble, and which one val chose.
#
# Usage: scripts/recipe-multi30k.sh PAIR          PAIR: en-de, de-en or en-fr
# Runs that finished (a test.json) are kept, not trained again.
# Environment: MULTI30K_DIR (read by scripts/fetch-multi30k.sh when data/multi30k is empty),
#   RUNS (default runs/recipe-PAIR), SEEDS (default "1 2"), MINUTES (default: the config's
#   train.time_budget_min), THREADS (cores in all, default: nproc), SET (more --set overrides
#   for every run, space-separated, e.g. "model.dropout=0.4"), R2L_SEEDS (default none: seeds
#   of right-to-left runs, RUNS/seed-N-r2l, trained beside the others; they rerank the beam of
#   the left-to-right system at each weight of RESCORE_WEIGHTS, default "0.3 0.5 0.7")
set -euo pipefail

cd "$(dirname "$0")/.."
PAIR=${1:?usage: scripts/recipe-multi30k.sh PAIR (en-de, de-en or en-fr)}
CONFIG=configs/multi30k-$PAIR.toml
[ -f "$CONFIG" ] || { echo "error: $CONFIG not found: PAIR is one of en-de, de-en, en-fr" >&2; exit 1; }
SRC=${PAIR%-*}
TGT=${PAIR#*-}
RUNS=${RUNS:-runs/recipe-$PAIR}
SEEDS=${SEEDS:-1 2}
THREADS=${THREADS:-$(nproc)}
. scripts/lib.sh
need_bin

read -ra seeds <<<"$SEEDS"
[ "${#seeds[@]}" -gt 0 ] || { echo "error: SEEDS is empty: give one or more seeds, e.g. SEEDS=\"1 2\"" >&2; exit 1; }
read -ra r2l_seeds <<<"${R2L_SEEDS:-}"
read -ra weights <<<"${RESCORE_WEIGHTS:-0.3 0.5 0.7}"
[ "${#r2l_seeds[@]}" = 0 ] || [ "${#weights[@]}" -gt 0 ] || { echo "error: RESCORE_WEIGHTS is empty: give the weights to try, e.g. \"0.3 0.5\"" >&2; exit 1; }
# every run to train: its directory name, seed and extra overrides
names=() run_seeds=() directions=()
for seed in "${seeds[@]}"; do names+=("seed-$seed") run_seeds+=("$seed") directions+=(false); done
for seed in ${r2l_seeds[@]+"${r2l_seeds[@]}"}; do names+=("seed-$seed-r2l") run_seeds+=("$seed") directions+=(true); done
per_run=$((THREADS / ${#names[@]}))
[ "$per_run" -ge 1 ] || per_run=1
overrides=()
[ -z "${MINUTES:-}" ] || overrides+=(--set "train.time_budget_min=$MINUTES")
read -ra sets <<<"${SET:-}"
for kv in ${sets[@]+"${sets[@]}"}; do overrides+=(--set "$kv"); done

[ -f data/multi30k/test_2016_flickr.$TGT.gz ] || scripts/fetch-multi30k.sh
mkdir -p "$RUNS"
if [ ! -f "$RUNS/data/manifest.json" ]; then
    "$BIN" prepare --config "$CONFIG" --out "$RUNS/data"
fi

# Training: every seed at once, each on its share of the cores; the first failure stops the recipe.
started=$(date +%s)
pids=() trained=()
for i in "${!names[@]}"; do
    run=$RUNS/${names[$i]}
    if [ -f "$run/test.json" ]; then
        echo "$run has finished training: kept"
        continue
    fi
    [ ! -e "$run" ] || { echo "error: $run exists but has not finished: remove it, or resume it with rnnsearch train --resume --out $run" >&2; exit 1; }
    echo "training $run (seed ${run_seeds[$i]}, right to left: ${directions[$i]}, $per_run thread(s)); log: $run.log"
    "$BIN" train --config "$CONFIG" --data "$RUNS/data" --threads "$per_run" --out "$run" \
        --set "train.seed=${run_seeds[$i]}" --set "train.right_to_left=${directions[$i]}" \
        ${overrides[@]+"${overrides[@]}"} >"$run.log" 2>&1 &
    pids+=($!) trained+=("${names[$i]}")
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || {
        kill "${pids[@]}" 2>/dev/null || true
        echo "error: training ${trained[$i]} failed: see $RUNS/${trained[$i]}.log" >&2
        exit 1
    }
done
echo "trained ${#trained[@]} models side by side in $((($(date +%s) - started) / 60)) minutes (training and each run's own choice on val)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for split in val test_2016_flickr; do
    zcat "data/multi30k/$split.$SRC.gz" >"$work/$split.src"
    zcat "data/multi30k/$split.$TGT.gz" >"$work/$split.ref"
done

# translate NAME MODELS SPLIT [FLAGS...]: the hypotheses of MODELS (comma-separated runs, each
# with the model its test.json names) on SPLIT, at the config's beam and alpha
translate() {
    quietly "$BIN" translate --model "$2" --threads "$THREADS" \
        --input "$work/$3.src" --output "$work/$1.$3" "${@:4}"
}

# every system: its name, its runs, and more translate flags (space-separated)
systems=() models=() flags=()
for seed in "${seeds[@]}"; do
    systems+=("seed-$seed") models+=("$RUNS/seed-$seed") flags+=("")
done
if [ "${#seeds[@]}" -gt 1 ]; then
    systems+=(ensemble) models+=("$(IFS=,; echo "${models[*]}")") flags+=("")
fi
if [ "${#r2l_seeds[@]}" -gt 0 ]; then
    r2l_runs=()
    for seed in "${r2l_seeds[@]}"; do r2l_runs+=("$RUNS/seed-$seed-r2l"); done
    r2l_list=$(IFS=,; echo "${r2l_runs[*]}")
    systems+=(r2l) models+=("$r2l_list") flags+=("")
    # the left-to-right system of the most runs (the ensemble when there is one) reranked
    l2r=${models[${#seeds[@]} > 1 ? ${#seeds[@]} : 0]}
    for w in "${weights[@]}"; do
        systems+=("rerank-$w") models+=("$l2r") flags+=("--rescore $r2l_list --rescore-weight $w")
    done
fi

best= best_bleu=-1
printf '%-10s %-18s %-12s %-12s %-22s %s\n' system split "BLEU" "chrF" "lowercased BLEU/chrF" models
for i in "${!systems[@]}"; do
    name=${systems[$i]}
    for split in val test_2016_flickr; do
        read -ra extra <<<"${flags[$i]}"
        translate "$name" "${models[$i]}" "$split" ${extra[@]+"${extra[@]}"}
        # scores fails loudly only outside `read`: a failed scoring must stop the recipe
        cased=$(scores "$work/$name.$split" "$work/$split.ref")
        lowercased=$(scores "$work/$name.$split" "$work/$split.ref" --lowercase)
        read -r bleu chrf <<<"$cased"
        read -r lbleu lchrf <<<"$lowercased"
        printf '%-10s %-18s %-12s %-12s %-22s %s\n' "$name" "$split" "$bleu" "$chrf" "$lbleu / $lchrf" "${models[$i]}${flags[$i]:+ ${flags[$i]}}"
        if [ "$split" = val ] && awk -v a="$bleu" -v b="$best_bleu" 'BEGIN { exit !(a > b) }'; then
            best=$i best_bleu=$bleu
        fi
    done
done
echo "chosen on val: ${systems[$best]} (val BLEU $best_bleu): translate --model ${models[$best]}${flags[$best]:+ ${flags[$best]}}"
