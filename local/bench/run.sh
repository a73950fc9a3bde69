#!/usr/bin/env bash
# Load-tests the local runner (release build) with wrk and prints the results.
#
#   local/bench/run.sh            embedded defaults: hits, then misses
#   local/bench/run.sh --stack    on the real local stack (local/stack.sh up first)
#
# The runner and wrk share this machine's cores, so the numbers are a floor, not a ceiling.
# Rate limiting is off (one client would hit its limit at once): this measures the quote path.
# DURATION (default 20s), CONNECTIONS (default 32) and PORT (default 18080) can be set.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mdb/target}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -p market-data-local

if [ "${1:-}" = --stack ]; then
  eval "$(local/stack.sh env)"
  label="real stack (postgres, redis, kafka)"
else
  unset DATABASE_URL REDIS_URL KAFKA_BOOTSTRAP_SERVERS FINNHUB_API_KEY
  label="embedded defaults"
fi
LOCAL_ADDR=127.0.0.1:$PORT RUST_LOG=warn RATE_LIMIT_PER_MINUTE=0 "$CARGO_TARGET_DIR/release/market-data-local" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; do sleep 0.2; done

base="http://127.0.0.1:$PORT"
curl -s -o /dev/null "$base/prices/latest?symbol=AAPL"
echo "### $label: cache hits (GET /prices/latest?symbol=AAPL)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$base/prices/latest?symbol=AAPL"
echo
echo "### $label: misses (a new symbol every request)"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s local/bench/random-symbol.lua "$base"
