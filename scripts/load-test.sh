#!/usr/bin/env bash
# Load test of `rnnsearch serve` against the CLI's batch translation of the same lines.
#
# Starts the server on a free loopback port, sends CLIENTS concurrent clients × REQUESTS
# requests of 1–10 lines each (drawn from SRC), with malformed and oversized requests mixed
# in, and reports the server's throughput (sentences/s of the valid requests over the wall
# time), the p50 and p99 latency, and the same lines translated by one `rnnsearch translate`
# over a file. Checks that every valid request got the CLI's translations and every bad one
# its 4xx; exits 1 otherwise. Both use the run's own model, beam and α.
#
# Usage: scripts/load-test.sh RUN_DIR [SRC]
#   SRC: source sentences, one per line (.gz read too); default: the run's data.test_src
#        (test_2016_flickr for the Multi30k configs)
# Environment: CLIENTS (32), REQUESTS per client (200), THREADS of the model (2).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_bin

RUN=${1:?usage: scripts/load-test.sh RUN_DIR [SRC]}
CLIENTS=${CLIENTS:-32}
REQUESTS=${REQUESTS:-200}
THREADS=${THREADS:-2}
if [ $# -ge 2 ]; then
    SRC=$2
else
    SRC=$(sed -n 's/^test_src *= *"\(.*\)"/\1/p' "$RUN/config.toml" | head -1)
    [ -n "$SRC" ] || { echo "error: give SRC (no data.test_src in $RUN/config.toml)" >&2; exit 1; }
fi
[ -f "$SRC" ] || { echo "error: $SRC not found" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The requests: which lines each carries, decided before anything runs.
python3 - "$SRC" "$CLIENTS" "$REQUESTS" "$work" <<'EOF'
import gzip, json, random, sys
src, clients, requests, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
opener = gzip.open if src.endswith(".gz") else open
with opener(src, "rt", encoding="utf-8") as fh:
    pool = [line.rstrip("\n") for line in fh if line.strip()]
rng = random.Random(7)
plan, lines = [], []
for c in range(clients):
    for r in range(requests):
        k = c * requests + r
        if k % 23 == 11:
            plan.append({"client": c, "bad": "json"})
        elif k % 29 == 13:
            plan.append({"client": c, "bad": "lines"})
        else:
            chosen = [rng.choice(pool) for _ in range(rng.randint(1, 10))]
            plan.append({"client": c, "first": len(lines), "lines": chosen})
            lines.extend(chosen)
json.dump(plan, open(f"{work}/plan.json", "w"))
open(f"{work}/lines.txt", "w", encoding="utf-8").writelines(l + "\n" for l in lines)
print(f"{len(plan)} requests, {len(lines)} sentences in the valid ones")
EOF

start=$(date +%s.%N)
quietly "$BIN" translate --model "$RUN" --threads "$THREADS" --no-stream \
    --input "$work/lines.txt" --output "$work/cli.txt"
end=$(date +%s.%N)
cli_seconds=$(awk -v a="$end" -v b="$start" 'BEGIN { print a - b }')

"$BIN" serve --model "$RUN" --threads "$THREADS" --addr 127.0.0.1:0 --max-lines 100 \
    2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 600); do
    grep -q "listening on" "$work/serve.log" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.1
done
addr=$(sed -n 's/^listening on http:\/\///p' "$work/serve.log")

python3 - "$addr" "$work" "$CLIENTS" "$cli_seconds" <<'EOF'
import http.client, json, sys, threading, time
addr, work, clients, cli_seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
plan = json.load(open(f"{work}/plan.json"))
expected = open(f"{work}/cli.txt", encoding="utf-8").read().split("\n")
host, port = addr.rsplit(":", 1)
latencies, failures, sentences = [], [], 0
lock = threading.Lock()

def client(c):
    global sentences
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    for item in (p for p in plan if p["client"] == c):
        if item.get("bad") == "json":
            body, want = b'{"text": ["unterminated"', 400
        elif item.get("bad") == "lines":
            body, want = json.dumps({"text": ["a"] * 101}).encode(), 413
        else:
            body, want = json.dumps({"text": item["lines"]}).encode(), 200
        while True:
            t = time.perf_counter()
            conn.request("POST", "/translate", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            elapsed = time.perf_counter() - t
            if response.status != 503:
                break
            time.sleep(float(response.getheader("Retry-After", "1")))
        with lock:
            if response.status != want:
                failures.append(f"client {c}: {response.status}, wanted {want}: {answer}")
            elif want == 200:
                latencies.append(elapsed)
                sentences += len(item["lines"])
                got = [t["text"] for t in answer["translations"]]
                first = item["first"]
                if got != expected[first:first + len(got)]:
                    failures.append(f"client {c}: {got} != CLI {expected[first:first + len(got)]}")

threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
start = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - start
latencies.sort()
pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
server_rate, cli_rate = sentences / wall, sentences / cli_seconds
print(f"server: {sentences} sentences in {wall:.1f} s: {server_rate:.0f} sentences/s; "
      f"latency p50 {1000 * pct(0.5):.0f} ms, p99 {1000 * pct(0.99):.0f} ms")
print(f"CLI:    the same sentences in {cli_seconds:.1f} s (whole command): {cli_rate:.0f} sentences/s")
print(f"server / CLI: {server_rate / cli_rate:.2f}x")
if failures:
    print(f"{len(failures)} failures, the first: {failures[0]}", file=sys.stderr)
    sys.exit(1)
print("every valid request got the CLI's translations, every bad one its 4xx")
EOF
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
