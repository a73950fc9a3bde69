#!/usr/bin/env bash
# Set up the real local stack and pass every test: the one command CI runs (.ci/run).
#
#   local/test.sh                       format, lint (Rust and CloudFormation), tests, doc tests,
#                                       smoke test of the runner, the functions under
#                                       `cargo lambda watch` (local/lambda-e2e.sh)
#   local/test.sh -E 'test(redis)'      extra arguments go to the test runner (cargo nextest
#                                       when installed, else cargo test)
#
# Starts what the stack lacks (local/stack.sh up) and, on exit, stops only what this run started.
# Stops at the first failing phase and prints how long each phase took. CARGO_TARGET_DIR
# defaults to ~/.cache/mdb/target, outside the checkout, reused between runs. SMOKE_PORT
# (default 18000) is where the smoke test serves.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mdb/target}
# Every checkout builds its own copies of the workspace's crates; incremental caches of them
# would only pile up in the shared target directory (they filled this machine's disk once).
export CARGO_INCREMENTAL=0
export MDB_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres
export MDB_TEST_REDIS_URL=redis://127.0.0.1:6379
export MDB_TEST_KAFKA_BOOTSTRAP=127.0.0.1:9092
export MDB_TEST_AWS_ENDPOINT=http://127.0.0.1:5000
export MDB_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:8001
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

WORK=$(mktemp -d)
# `stack.sh up` lists here the services it started, so the exit trap stops those and no others.
export MDB_STACK_STARTED_FILE=$WORK/started
: >"$MDB_STACK_STARTED_FILE"

SUMMARY=()
CURRENT=""
SMOKE_PID=""
PREBUILD_PID=""

finish() {
  local status=$? started
  if [ -n "$SMOKE_PID" ]; then kill "$SMOKE_PID" 2>/dev/null || true; fi
  if [ -n "$PREBUILD_PID" ]; then kill -- -"$PREBUILD_PID" 2>/dev/null || true; fi
  mapfile -t started <"$MDB_STACK_STARTED_FILE"
  if [ ${#started[@]} -gt 0 ]; then
    echo "==> stack down (${started[*]})"
    "$ROOT/local/stack.sh" down "${started[@]}" || status=1
  fi
  rm -rf "$WORK"
  echo
  if [ ${#SUMMARY[@]} -gt 0 ]; then
    echo "Timings:"
    printf '  %s\n' "${SUMMARY[@]}"
  fi
  if [ "$status" -eq 0 ]; then
    echo "All phases passed."
  else
    echo "FAILED${CURRENT:+ in phase: $CURRENT} (exit $status)"
  fi
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# phase NAME CMD...: run CMD as one timed phase; the script stops if it fails.
phase() {
  CURRENT=$1
  shift
  local start=$SECONDS
  echo "==> $CURRENT"
  "$@"
  SUMMARY+=("$(printf '%-10s %5ss' "$CURRENT" $((SECONDS - start)))")
  CURRENT=""
}

# Databases the tests create for themselves (mdb_t_*) and a killed run left behind.
drop_test_databases() {
  psql "$MDB_TEST_DATABASE_URL" -X -q -v ON_ERROR_STOP=1 <<'SQL'
select format('drop database if exists %I with (force)', datname)
from pg_database where left(datname, 6) = 'mdb_t_'
\gexec
SQL
}

# nextest runs tests in parallel processes but skips doc tests: those get their own phase.
if cargo nextest --version >/dev/null 2>&1; then
  run_tests() { cargo nextest run --workspace --locked --no-fail-fast "$@"; }
  doc_tests=yes
else
  echo "cargo-nextest not installed: running the tests with cargo test"
  run_tests() { cargo test --workspace --locked "$@"; }
  doc_tests=no
fi

# The README's first command, on a machine with nothing configured: the local runner must
# serve a simulated quote on its embedded defaults.
smoke() {
  local port=${SMOKE_PORT:-18000} log=$WORK/smoke.log body deadline
  local app_vars=(DATABASE_URL DATABASE_SECRET_ID REDIS_URL REDIS_URL_SECRET_ID
    KAFKA_BOOTSTRAP_SERVERS KAFKA_TOPIC FINNHUB_API_KEY FINNHUB_API_KEY_SECRET_ID
    FINNHUB_BASE_URL DEFAULT_PROVIDER JOBS_TABLE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_DYNAMODB
    AWS_ENDPOINT_URL_EVENTBRIDGE POLLER_FUNCTION_ARN API_KEYS API_KEYS_SECRET_ID
    RATE_LIMIT_PER_MINUTE RATE_LIMIT_BURST)
  local unset_args=()
  for var in "${app_vars[@]}"; do unset_args+=(-u "$var"); done

  # --workspace: the same feature set as the test build, so nothing is compiled twice.
  cargo build --workspace --bins --locked
  if (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port is already taken: set SMOKE_PORT to a free port" >&2
    return 1
  fi
  env "${unset_args[@]}" LOCAL_ADDR="127.0.0.1:$port" \
    "$CARGO_TARGET_DIR/debug/market-data-local" >"$log" 2>&1 &
  SMOKE_PID=$!

  deadline=$((SECONDS + 30))
  until curl -s -o /dev/null "http://127.0.0.1:$port/health"; do
    if ! kill -0 "$SMOKE_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      cat "$log" >&2
      echo "market-data-local did not start serving on 127.0.0.1:$port" >&2
      return 1
    fi
    sleep 0.2
  done

  if ! body=$(curl -fsS "http://127.0.0.1:$port/prices/latest?symbol=AAPL") ||
    ! python3 -c '
import json, sys
quote = json.loads(sys.argv[1])
assert quote.get("provider") == "simulated", quote
assert quote.get("symbol") == "AAPL", quote
assert float(quote["price"]) > 0, quote
' "$body"; then
    cat "$log" >&2
    echo "unexpected answer: ${body:-none}" >&2
    return 1
  fi
  echo "smoke: $body"

  kill "$SMOKE_PID"
  wait "$SMOKE_PID" 2>/dev/null || true
  SMOKE_PID=""
}

# The workspace builds (and is checked by clippy) beside the first phases: on a fresh machine
# the stack phase spends most of 20 minutes building Tansu, and the two builds together take
# little longer than the longer one (docs/benchmarks.md). The clippy and bins phases then find
# everything built and report what failed, if anything did.
prebuild() {
  cargo build --workspace --all-targets --locked &&
    cargo clippy --workspace --all-targets --locked -- -D warnings
}
wait_prebuild() {
  local pid=$PREBUILD_PID
  PREBUILD_PID=""
  if ! wait "$pid"; then
    echo "(the early build failed; the phases below say why)"
    tail -n 5 "$WORK/prebuild.log"
  fi
}
set -m
prebuild >"$WORK/prebuild.log" 2>&1 &
PREBUILD_PID=$!
set +m

phase stack "$ROOT/local/stack.sh" up
phase dropdbs drop_test_databases
phase fmt cargo fmt --all --check
# cfn-lint and `sam validate --lint` on the SAM template and infra/ (tools installed once).
phase templates "$ROOT/local/lint-templates.sh"
phase build wait_prebuild
phase clippy cargo clippy --workspace --all-targets --locked -- -D warnings
# The binaries before the tests: runner_restarts runs the real market-data-local (it would
# otherwise build it inside a test's time).
phase bins cargo build --workspace --bins --locked
phase tests run_tests "$@"
if [ "$doc_tests" = yes ]; then phase doctests cargo test --workspace --doc --locked; fi
phase smoke smoke
phase lambda "$ROOT/local/lambda-e2e.sh"
