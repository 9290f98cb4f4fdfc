# What the scripts share; sourced (`. scripts/lib.sh`) from the project root, never run.

BIN=${CARGO_TARGET_DIR:-target}/release/rnnsearch

# need_bin: stop with the command that builds the binary when it is missing
need_bin() {
    [ -x "$BIN" ] || { echo "error: $BIN not found: cargo build --release --workspace" >&2; exit 1; }
}

# quietly CMD...: runs CMD with its stderr kept aside (translate's progress lines), and shows that
# stderr only when CMD fails, so a failure never passes in silence under `set -e`
quietly() {
    local log status=0
    log=$(mktemp)
    "$@" 2>"$log" || status=$?
    [ "$status" = 0 ] || { cat "$log" >&2; echo "error: failed ($status): $*" >&2; }
    rm -f "$log"
    return "$status"
}

# scores HYP REF [evaluate options...]: the scores `rnnsearch evaluate` gives, two decimals each,
# BLEU then chrF (one of them alone with --metrics bleu or --metrics chrf); fails when evaluate
# fails or leaves out one it was asked for
scores() {
    local json want="BLEU chrF2"
    case " ${*:3} " in
        *" --metrics bleu "*) want="BLEU" ;;
        *" --metrics chrf "*) want="chrF2" ;;
    esac
    json=$("$BIN" evaluate --hyp "$1" --ref "$2" "${@:3}" --format json) || return 1
    python3 -c 'import json, sys
d = {r["name"]: r["score"] for r in map(json.loads, filter(str.strip, sys.stdin))}
want = sys.argv[1].split()
missing = [k for k in want if k not in d]
if missing:
    sys.exit("error: rnnsearch evaluate did not report %s (got %s)" % (missing, sorted(d)))
print(" ".join("%.2f" % d[k] for k in want))' "$want" <<<"$json"
}
