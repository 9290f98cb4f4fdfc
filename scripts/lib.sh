# What the scripts share; sourced (`. scripts/lib.sh`) from the project root, never run.

BIN=${CARGO_TARGET_DIR:-target}/release/rnnsearch

# need_bin: stop with the command that builds the binary when it is missing
need_bin() {
    [ -x "$BIN" ] || { echo "error: $BIN not found: cargo build --release --workspace" >&2; exit 1; }
}

# scores HYP REF [evaluate options...]: the scores `rnnsearch evaluate` gives, two decimals each,
# BLEU then chrF (one of them alone with --metrics bleu or --metrics chrf); fails when evaluate
# fails or reports neither
scores() {
    local json
    json=$("$BIN" evaluate --hyp "$1" --ref "$2" "${@:3}" --format json) || return 1
    python3 -c 'import json, sys
d = {r["name"]: r["score"] for r in map(json.loads, filter(str.strip, sys.stdin))}
found = ["%.2f" % d[k] for k in ("BLEU", "chrF2") if k in d]
if not found:
    sys.exit("error: rnnsearch evaluate reported neither BLEU nor chrF2: %s" % sorted(d))
print(" ".join(found))' <<<"$json"
}
