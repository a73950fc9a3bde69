#!/usr/bin/env bash
# The latest-price hot path against its floor, measured in one run. Needs the real local stack
# (local/stack.sh up: PostgreSQL, Redis, and Kafka for the miss).
#
#   local/bench/floor.sh              every case below
#   local/bench/floor.sh a c miss     only the named cases
#
# The floor is local/bench/floor.rs (`--example bench-floor`): a bare axum server answering a
# fixed quote-sized JSON body, same axum/hyper/tokio as the service. The runner and the floor
# are built with `--profile profiling` (release code without LTO, with line tables). For each
# case the floor and then the runner are loaded with wrk for DURATION (default 10s) at 64
# connections (2 threads), then both at 1 connection (1 thread), and every figure is printed
# beside its ratio to the floor run just before it: requests/s as a share of the floor's,
# p50 and p99 as a multiple of the floor's. Cases (one cached symbol, GET /prices/latest?symbol=AAPL,
# so every request is a hit in the process's memory):
#   a  the production configuration: the Redis rate limiter on (RATE_LIMIT_PER_MINUTE and
#      RATE_LIMIT_BURST at 1,000,000, so it never refuses), RUST_LOG=info, so the access log
#      writes one JSON line (LOG_FORMAT=json, as on Lambda) per request;
#   b  limiter off (RATE_LIMIT_PER_MINUTE=0), access log on;
#   c  limiter off, RUST_LOG=warn (no access log).
#   miss  configuration a, 1 connection, a new symbol every request (random-symbol.lua):
#      Finnhub (FINNHUB_BASE_URL) is the floor server's `/api/v1/quote`, answered at once, with
#      its quota at 1,000,000 a minute, so each request is the provider call over HTTP, the raw
#      row in PostgreSQL, the event to Kafka (acks=all), the delivered mark and the cache writes.
#   stages  (not in the default list) the miss again, under `perf trace` (linux-perf) of the
#      runner's socket calls: local/bench/stages.py prints where the time of a request goes,
#      stage by stage (tracing slows the process itself down; compare its total with the miss).
# The runner's output (startup lines and the access log) goes to a file per case in OUT
# (default: a new directory under /tmp), printed at the end with its line count. RUNNER
# names another runner binary to measure (say, a copy of the build before a change). wrk, the
# runner, the floor and the stack share this machine's cores: compare ratios, not absolutes,
# with other runs. Installs wrk from Debian when missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mdb/target}
DURATION=${DURATION:-10s}
PORT=${PORT:-18080}
FLOOR_PORT=${FLOOR_PORT:-18070}
OUT=${OUT:-$(mktemp -d /tmp/mdb-floor.XXXXXX)}
mkdir -p "$OUT"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(a b c miss)

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q wrk >/dev/null; else sudo apt-get install -y -q wrk; fi
fi
cargo build --profile profiling --locked -p market-data-local --bin market-data-local --example bench-floor
bin=$CARGO_TARGET_DIR/profiling
RUNNER=${RUNNER:-$bin/market-data-local}

eval "$(local/stack.sh env)"
export LOCAL_CONSUMER_OFF=true CACHE_TTL_SECONDS=3600 CACHE_STALE_TTL_SECONDS=3600 LOG_FORMAT=json
export REDIS_KEY_PREFIX="mdb_floor_$$:"
floor="http://127.0.0.1:$FLOOR_PORT"
base="http://127.0.0.1:$PORT"
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_KEY_PREFIX*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null
}
trap cleanup EXIT

"$bin/examples/bench-floor" "127.0.0.1:$FLOOR_PORT" &
pids+=("$!")
until curl -s -o /dev/null "$floor/prices/latest"; do sleep 0.1; done

# start_runner CASE [VAR=value...]: the runner with the case's settings, output to OUT/CASE.log.
start_runner() {
  local name=$1
  shift
  env LOCAL_ADDR="127.0.0.1:$PORT" "$@" "$RUNNER" >"$OUT/$name.log" 2>&1 &
  runner=$!
  pids+=("$runner")
  until curl -s -o /dev/null "$base/health"; do
    kill -0 "$runner" 2>/dev/null || { tail -n 20 "$OUT/$name.log" >&2; exit 1; }
    sleep 0.1
  done
}

stop_runner() {
  kill "$runner"
  wait "$runner" 2>/dev/null || true
}

# measure CONNECTIONS URL [WRK_BASE]: sets rps, p50, p99 (µs) and errors.
measure() {
  local c=$1 url=$2 threads=2 line
  [ "$c" -eq 1 ] && threads=1
  line=$(WRK_BASE=${3:-} wrk -t"$threads" -c"$c" -d"$DURATION" -s local/bench/figures.lua "$url" | grep '^figures')
  read -r _ rps p50 p99 _ errors <<<"$line"
}

ms() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000 }'; }
share() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * a / b }'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }'; }

# hit LABEL: floor then runner at 64 and at 1 connection, one table row each.
hit() {
  local label=$1 c frps fp50 fp99
  curl -s -o /dev/null "$base/prices/latest?symbol=AAPL"
  wrk -t2 -c64 -d2s "$base/prices/latest?symbol=AAPL" >/dev/null # warm-up, not printed
  for c in 64 1; do
    measure "$c" "$floor/prices/latest"
    frps=$rps fp50=$p50 fp99=$p99
    echo "| floor | $c | $rps | | $(ms "$p50") | | $(ms "$p99") | | $errors |"
    measure "$c" "$base/prices/latest?symbol=AAPL"
    echo "| $label | $c | $rps | $(share "$rps" "$frps") | $(ms "$p50") | $(times "$p50" "$fp50") | $(ms "$p99") | $(times "$p99" "$fp99") | $errors |"
  done
}

limited=(RATE_LIMIT_PER_MINUTE=1000000 RATE_LIMIT_BURST=1000000)
echo "load before: $(uptime)"
echo
echo "| case | connections | requests/s | of floor | p50 (ms) | × floor | p99 (ms) | × floor | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for case in "${cases[@]}"; do
  case $case in
    a)
      start_runner a "${limited[@]}" RUST_LOG=info
      hit "a: hit, Redis limiter, access log"
      ;;
    b)
      start_runner b RATE_LIMIT_PER_MINUTE=0 RUST_LOG=info
      hit "b: hit, limiter off, access log"
      ;;
    c)
      start_runner c RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn
      hit "c: hit, limiter off, warn"
      ;;
    miss)
      start_runner miss "${limited[@]}" RUST_LOG=info FINNHUB_API_KEY=bench \
        FINNHUB_BASE_URL="$floor/api/v1" FINNHUB_CALLS_PER_MINUTE=1000000
      measure 1 "$base" local/bench/random-symbol.lua
      echo "| miss (Finnhub stand-in), Redis limiter, access log | 1 | $rps | | $(ms "$p50") | | $(ms "$p99") | | $errors |"
      ;;
    stages)
      start_runner stages "${limited[@]}" RUST_LOG=info FINNHUB_API_KEY=bench \
        FINNHUB_BASE_URL="$floor/api/v1" FINNHUB_CALLS_PER_MINUTE=1000000
      WRK_BASE=local/bench/random-symbol.lua wrk -t1 -c1 -d3s -s local/bench/figures.lua "$base" >/dev/null
      perf trace -p "$runner" -o "$OUT/stages.trace" \
        -e read,write,readv,writev,sendto,recvfrom,sendmsg,recvmsg &
      tracer=$!
      pids+=("$tracer")
      sleep 1
      # The runner's TCP connections while wrk's is open: fd, local port, remote port.
      (sleep 2; ss -tnpH | awk -v pid="pid=$runner," 'index($0, pid) {
        n = split($4, l, ":"); m = split($5, r, ":"); match($0, /fd=[0-9]+/)
        print substr($0, RSTART + 3, RLENGTH - 3), l[n], r[m] }' >"$OUT/stages.fds") &
      measure 1 "$base" local/bench/random-symbol.lua
      echo "| miss under perf trace | 1 | $rps | | $(ms "$p50") | | $(ms "$p99") | | $errors |"
      kill -INT "$tracer"
      wait "$tracer" 2>/dev/null || true
      stage_table=$(python3 local/bench/stages.py "$OUT/stages.trace" "$OUT/stages.fds" "$PORT")
      ;;
    *) echo "unknown case $case (a, b, c, miss, stages)" >&2; exit 2 ;;
  esac
  stop_runner
done
if [ -n "${stage_table:-}" ]; then
  echo
  echo "$stage_table"
fi
echo
echo "load after: $(uptime)"
for case in "${cases[@]}"; do
  echo "runner output of $case: $OUT/$case.log ($(wc -l <"$OUT/$case.log") lines)"
done
