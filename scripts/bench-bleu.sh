#!/usr/bin/env bash
# Speed of `rnnsearch evaluate` against the sacreBLEU CLI, in two parts:
#
# 1. one system: a LINES-line corpus (default 100,000) made by perturbing
#    Multi30k training sentences, BLEU and chrF;
# 2. a paired test: a baseline and three systems over PAIRED_LINES lines
#    (default 3,000), BLEU, chrF and TER with --paired-bs.
#
# Each part first checks that both tools print the same numbers (part 2:
# every score, p-value, bootstrap mean and interval), then times each whole
# command RUNS times (alternating) and prints the median wall times and
# their ratio.
#
# Usage: scripts/bench-bleu.sh
# Environment:
#   MULTI30K_DIR  folder with train.de.gz   (default: data/multi30k)
#   SACREBLEU     sacreBLEU command          (default: sacrebleu; pip install sacrebleu==2.6.0)
#   LINES         corpus size in lines       (default: 100000)
#   PAIRED_LINES  lines of the paired test   (default: 3000)
#   RUNS          timed runs of each command (default: 3)
#   SKIP_BUILD=1  use the existing release binary
set -euo pipefail

cd "$(dirname "$0")/.."
MULTI30K_DIR=${MULTI30K_DIR:-data/multi30k}
SACREBLEU=${SACREBLEU:-sacrebleu}
LINES=${LINES:-100000}
PAIRED_LINES=${PAIRED_LINES:-3000}
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

# make_corpus N DIR SYSTEMS: DIR/ref.txt and SYSTEMS hypothesis files DIR/sys{0,1,...}.txt
# of N lines, each line of system k with k+2 edits (drop, swap or recase a word)
make_corpus() {
    mkdir -p "$2"
    python3 - "$MULTI30K_DIR/train.de.gz" "$1" "$2" "$3" <<'EOF'
import gzip, random, sys
src, n, out, systems = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with gzip.open(src, "rt", encoding="utf-8") as fh:
    lines = [line.rstrip("\n") for line in fh]
rng = random.Random(1)
refs = [lines[i % len(lines)] for i in range(n)]
with open(f"{out}/ref.txt", "w", encoding="utf-8") as ref:
    ref.writelines(line + "\n" for line in refs)
for k in range(systems):
    with open(f"{out}/sys{k}.txt", "w", encoding="utf-8") as hyp:
        for line in refs:
            words = line.split()
            for _ in range(k + 2):
                if len(words) > 2:
                    op, j = rng.random(), rng.randrange(len(words))
                    if op < 0.3:
                        del words[j]
                    elif op < 0.6:
                        m = rng.randrange(len(words))
                        words[j], words[m] = words[m], words[j]
                    elif op < 0.8:
                        words[j] = words[j].lower()
            hyp.write(" ".join(words) + "\n")
EOF
}

make_corpus "$LINES" "$work" 1
mv "$work/sys0.txt" "$work/hyp.txt"
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

# race: times the commands in the arrays ours and theirs RUNS times each, alternating, and prints
# the medians and their ratio
race() {
    local t_ours t_theirs
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
}

race

echo
echo "paired bootstrap test: baseline and 3 systems, $PAIRED_LINES lines, BLEU chrF TER"
p="$work/paired"
make_corpus "$PAIRED_LINES" "$p" 4
ours=("$BIN" evaluate --hyp "$p"/sys{0,1,2,3}.txt --ref "$p/ref.txt" --metrics bleu,chrf,ter
      --paired-bs)
theirs=("$SACREBLEU" "$p/ref.txt" -i "$p"/sys{0,1,2,3}.txt -m bleu chrf ter --paired-bs -w 2
        -f text --no-color)
# sacreBLEU 2.6.0's `-f json` fails on paired bootstrap results (float32 is not JSON
# serialisable), so the tables are compared: every score, mean, interval and p-value as
# printed. The legend differs in one line on purpose (no colours here), the version by design.
normalise() { sed -e 's/version:[^ ]*//' -e '/Otherwise, the p-values are/d'; }
"${ours[@]}" | normalise >"$p/ours.txt"
"${theirs[@]}" 2>/dev/null | normalise >"$p/theirs.txt"
if ! diff -q "$p/ours.txt" "$p/theirs.txt" >/dev/null; then
    echo "error: the paired test differs from sacreBLEU's:" >&2
    diff "$p/ours.txt" "$p/theirs.txt" >&2 || true
    exit 1
fi
echo "every score, interval and p-value as sacreBLEU prints them"
"${ours[@]}"
race
