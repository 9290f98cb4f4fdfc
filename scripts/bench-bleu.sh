#!/usr/bin/env bash
# Speed of `rnnsearch evaluate` against the sacreBLEU CLI on a large corpus.
#
# Builds rnnsearch (release), makes a LINES-line corpus (default 100,000)
# by perturbing Multi30k training sentences, checks that both tools print
# the same BLEU and chrF, then times each whole command RUNS times
# (alternating) and prints the median wall times and their ratio.
#
# Usage: scripts/bench-bleu.sh
# Environment:
#   MULTI30K_DIR  folder with train.de.gz   (default: data/multi30k)
#   SACREBLEU     sacreBLEU command          (default: sacrebleu; pip install sacrebleu==2.6.0)
#   LINES         corpus size in lines       (default: 100000)
#   RUNS          timed runs of each command (default: 3)
#   SKIP_BUILD=1  use the existing release binary
set -euo pipefail

cd "$(dirname "$0")/.."
MULTI30K_DIR=${MULTI30K_DIR:-data/multi30k}
SACREBLEU=${SACREBLEU:-sacrebleu}
LINES=${LINES:-100000}
RUNS=${RUNS:-3}
BIN=${CARGO_TARGET_DIR:-target}/release/rnnsearch

command -v "$SACREBLEU" >/dev/null ||
    { echo "error: $SACREBLEU not found (pip install sacrebleu==2.6.0)" >&2; exit 1; }
[ -f "$MULTI30K_DIR/train.de.gz" ] ||
    { echo "error: $MULTI30K_DIR/train.de.gz not found (set MULTI30K_DIR)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --workspace
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$MULTI30K_DIR/train.de.gz" "$LINES" "$work" <<'EOF'
import gzip, random, sys
src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with gzip.open(src, "rt", encoding="utf-8") as fh:
    lines = [line.rstrip("\n") for line in fh]
rng = random.Random(1)
with open(f"{out}/ref.txt", "w", encoding="utf-8") as ref, \
        open(f"{out}/hyp.txt", "w", encoding="utf-8") as hyp:
    for i in range(n):
        words = lines[i % len(lines)].split()
        ref.write(" ".join(words) + "\n")
        for _ in range(2):  # drop, swap or recase a word
            if len(words) > 2:
                op, j = rng.random(), rng.randrange(len(words))
                if op < 0.3:
                    del words[j]
                elif op < 0.6:
                    k = rng.randrange(len(words))
                    words[j], words[k] = words[k], words[j]
                elif op < 0.8:
                    words[j] = words[j].lower()
        hyp.write(" ".join(words) + "\n")
EOF
echo "corpus: $(wc -l <"$work/hyp.txt") lines, $(du -h "$work/hyp.txt" | cut -f1) of hypotheses"

ours=("$BIN" evaluate --hyp "$work/hyp.txt" --ref "$work/ref.txt" --metrics bleu,chrf)
theirs=("$SACREBLEU" "$work/ref.txt" -i "$work/hyp.txt" -m bleu chrf -f text -w 2)

# Same numbers first (the version field differs by design).
"${ours[@]}" | sed 's/version:[^ ]*//' >"$work/ours.txt"
"${theirs[@]}" 2>/dev/null | sed 's/version:[^ ]*//' >"$work/theirs.txt"
cat "$work/ours.txt"
if ! diff -q "$work/ours.txt" "$work/theirs.txt" >/dev/null; then
    echo "error: scores differ from sacreBLEU:" >&2
    diff "$work/ours.txt" "$work/theirs.txt" >&2 || true
    exit 1
fi
echo "scores identical to sacreBLEU"

seconds() { # wall seconds of one run of "$@"
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    awk -v a="$end" -v b="$start" 'BEGIN { print a - b }'
}
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

: >"$work/t_ours"
: >"$work/t_theirs"
for ((i = 1; i <= RUNS; i++)); do
    seconds "${ours[@]}" >>"$work/t_ours"
    seconds "${theirs[@]}" >>"$work/t_theirs"
done
t_ours=$(median <"$work/t_ours")
t_theirs=$(median <"$work/t_theirs")
printf 'rnnsearch evaluate: %.3f s (median of %d)\n' "$t_ours" "$RUNS"
printf 'sacrebleu:          %.3f s (median of %d)\n' "$t_theirs" "$RUNS"
printf 'speed-up:           %.1fx\n' "$(awk -v a="$t_theirs" -v b="$t_ours" 'BEGIN { print a / b }')"
