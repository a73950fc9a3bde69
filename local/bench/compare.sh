#!/usr/bin/env bash
# The latest-price benchmarks of docs/benchmarks.md, side by side with a FastAPI + redis-py
# baseline doing the same cache-hit work. Needs the real local stack (local/stack.sh up).
#
#   local/bench/compare.sh
#
# Installs what it lacks: wrk (Debian) and the baseline's Python packages (a virtualenv under
# ~/.cache/mdb/tools/bench-venv). Builds the runner in release, then for each case runs
# `wrk --latency` for DURATION (default 10s) at 1, 16 and 64 connections and prints one
# Markdown row each (requests/s, p50, p99, p99.9 in ms, errors):
#   - L1 hit: one cached symbol, answered from the process's memory;
#   - Redis hit: CACHE_L1_CAPACITY=1 and 100 symbols in turn, so each is answered from Redis;
#   - miss: a new symbol every request (provider, raw row in PostgreSQL, event to Kafka);
#   - baseline: FastAPI (uvicorn, 2 workers, uvloop) reading the quote from Redis.
# Then start-up time and memory of every binary (local/bench/startup.py), and the runner's
# resident memory after 10,000 requests. wrk and the service share the machine's cores.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mdb/target}
DURATION=${DURATION:-10s}
PORT=${PORT:-18080}
BASELINE_PORT=${BASELINE_PORT:-18090}
VENV=$HOME/.cache/mdb/tools/bench-venv

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q wrk >/dev/null; else sudo apt-get install -y -q wrk; fi
fi
if [ ! -x "$VENV/bin/uvicorn" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r local/bench/baseline/requirements.txt
fi
cargo build --release --locked -p market-data-local -p price-api -p poller -p ma-consumer

eval "$(local/stack.sh env)"
export RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0 CACHE_TTL_SECONDS=3600 CACHE_STALE_TTL_SECONDS=3600
export REDIS_KEY_PREFIX="mdb_bench_$$:" LOCAL_CONSUMER_OFF=true
base="http://127.0.0.1:$PORT"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

start_runner() {
  LOCAL_ADDR=127.0.0.1:$PORT "$CARGO_TARGET_DIR/release/market-data-local" >/dev/null 2>&1 &
  runner=$!
  pids+=("$runner")
  until curl -s -o /dev/null "$base/health"; do sleep 0.1; done
}

# row LABEL CONNECTIONS [wrk args...]
row() {
  local label=$1 c=$2 threads=2
  shift 2
  [ "$c" -eq 1 ] && threads=1
  LABEL="$label, $c conn" wrk -t"$threads" -c"$c" -d"$DURATION" "$@" | grep '^|'
}

header() {
  echo
  echo "$1"
  echo
  echo "| case | requests/s | p50 (ms) | p99 (ms) | p99.9 (ms) | errors |"
  echo "|---|---:|---:|---:|---:|---:|"
}

header "### GET /prices/latest through the local runner (real stack)"
start_runner
curl -s -o /dev/null "$base/prices/latest?symbol=AAPL"
for c in 1 16 64; do row "L1 hit" "$c" -s local/bench/latency.lua "$base/prices/latest?symbol=AAPL"; done
for c in 1 16 64; do row "miss" "$c" -s local/bench/random-symbol.lua "$base"; done

python3 - "$base" <<'PY'
import http.client, sys, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
conn = http.client.HTTPConnection(url.hostname, url.port)
for i in range(10_000):
    conn.request("GET", f"/prices/latest?symbol=R{i % 50}")
    conn.getresponse().read()
PY
rss=$(awk '/VmRSS/ {print $2}' "/proc/$runner/status")
kill "$runner"; wait "$runner" 2>/dev/null || true

CACHE_L1_CAPACITY=1 start_runner
for i in $(seq 0 99); do curl -s -o /dev/null "$base/prices/latest?symbol=S$i"; done
for c in 1 16 64; do row "Redis hit (L1 of 1)" "$c" -s local/bench/cycle-symbols.lua "$base"; done
quote=$(curl -s "$base/prices/latest?symbol=S1")
kill "$runner"; wait "$runner" 2>/dev/null || true

header "### The same cache hit in FastAPI + redis-py (uvicorn, 2 workers)"
redis-cli -u "$REDIS_URL" set "mdb_bench_baseline:AAPL" "$quote" >/dev/null
(cd local/bench/baseline && REDIS_URL=$REDIS_URL "$VENV/bin/uvicorn" app:app --host 127.0.0.1 \
  --port "$BASELINE_PORT" --workers 2 --loop uvloop --http httptools --log-level warning) &
pids+=("$!")
until curl -s -o /dev/null "http://127.0.0.1:$BASELINE_PORT/prices/latest?symbol=AAPL"; do sleep 0.2; done
for c in 1 16 64; do
  row "baseline Redis hit" "$c" -s local/bench/latency.lua "http://127.0.0.1:$BASELINE_PORT/prices/latest?symbol=AAPL"
done
redis-cli -u "$REDIS_URL" del "mdb_bench_baseline:AAPL" >/dev/null
redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_KEY_PREFIX*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null

echo
echo "### Start-up and memory (release build, host)"
echo
python3 local/bench/startup.py "$CARGO_TARGET_DIR/release" 20
echo
echo "local runner resident memory after 10,000 requests over 50 symbols: $((rss / 1024)) MiB"
