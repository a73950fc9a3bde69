#!/usr/bin/env bash
# End to end through the Lambda runtime emulator: `cargo lambda watch` serves the three
# functions on the local stack and this script checks what `cargo lambda invoke` (with the
# sample events of local/events/) and the function URL of price-api answer.
#
#   local/stack.sh up && local/lambda-e2e.sh
#
# Works in resources of its own, so it runs beside the tests and beside a running local runner:
# a fresh database mdb_t_lambda_* (local/test.sh drops mdb_t_* databases), a Kafka topic, a
# Redis key prefix, a DynamoDB jobs table and an EventBridge (moto) rule prefix. The provider is
# the simulated one: nothing leaves the machine. Stops what it started on exit and, when a check
# fails, prints the emulator's log and exits non-zero.
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/mdb/target, the one local/test.sh uses),
# LAMBDA_WATCH_PORT (default: a free port), LAMBDA_BUILD_TIMEOUT (seconds a first invocation may
# spend compiling its function, default 1200).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mdb/target}
BUILD_TIMEOUT=${LAMBDA_BUILD_TIMEOUT:-1200}
PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres

say() { printf 'lambda-e2e: %s\n' "$*"; }

# cargo-lambda comes from PyPI. pip installs into the current Python; where that Python is
# externally managed (Debian's own, PEP 668), into a virtualenv in the tools dir, put on PATH
# (cargo finds `cargo-lambda` there).
TOOLS_DIR=${MDB_TOOLS_DIR:-$HOME/.cache/mdb/tools}
if [ -x "$TOOLS_DIR/cargo-lambda-venv/bin/cargo-lambda" ]; then
  PATH=$TOOLS_DIR/cargo-lambda-venv/bin:$PATH
fi
if ! cargo lambda --version >/dev/null 2>&1; then
  say "installing cargo-lambda (pip install cargo-lambda)"
  if ! { python3 -m pip install -q cargo-lambda >/dev/null 2>&1 && hash -r &&
    cargo lambda --version >/dev/null 2>&1; }; then
    python3 -m venv "$TOOLS_DIR/cargo-lambda-venv" >&2
    "$TOOLS_DIR/cargo-lambda-venv/bin/pip" install -q cargo-lambda >&2
    PATH=$TOOLS_DIR/cargo-lambda-venv/bin:$PATH
  fi
  cargo lambda --version >/dev/null 2>&1 || { say "cargo-lambda did not install" >&2; exit 1; }
fi
say "$(cargo lambda --version)"

WORK=$(mktemp -d)
WATCH_PID=""
RUN_ID=$(python3 -c 'import secrets; print(secrets.token_hex(4))')
DB=mdb_t_lambda_$RUN_ID
DB_CREATED=""
JOB_ID=""

# The stack's configuration (local/.env.example), each shared resource replaced by one of ours.
eval "$("$ROOT/local/stack.sh" env)"
# The functions run as on Lambda (AWS_LAMBDA_FUNCTION_NAME is set), where sslmode defaults to
# require against the RDS CAs; the local server's certificate is not one of them.
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=prefer"
export DATABASE_MIGRATE_ON_START=true
export KAFKA_TOPIC=mdb-t-lambda-$RUN_ID
export REDIS_KEY_PREFIX=mdb_t_lambda_$RUN_ID:
export JOBS_TABLE=mdb-t-lambda-$RUN_ID
# Claimed ticks go to an SQS queue of ours on moto, as on AWS; what it holds is what this script
# hands to the poller, in the event source mapping's batch shape.
POLL_QUEUE_NAME=mdb-l-$RUN_ID-ticks
export DEFAULT_PROVIDER=simulated
export METRICS=off
export RUST_LOG=${RUST_LOG:-info}
# Settings of the caller's shell that would change the answers checked below.
unset FINNHUB_API_KEY FINNHUB_API_KEY_SECRET_ID FINNHUB_BASE_URL API_KEYS API_KEYS_SECRET_ID \
  DATABASE_SECRET_ID REDIS_URL_SECRET_ID MA_WINDOWS RATE_LIMIT_PER_MINUTE RATE_LIMIT_BURST

if [ -n "${LAMBDA_WATCH_PORT:-}" ]; then
  PORT=$LAMBDA_WATCH_PORT
else
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
BASE=http://127.0.0.1:$PORT
URL=$BASE/lambda-url/price-api
LOG=$WORK/watch.log

finish() {
  local status=$?
  if [ -n "$JOB_ID" ] && [ -n "$WATCH_PID" ]; then
    # Removes the job.
    curl -s -o /dev/null --max-time 30 -X DELETE "$URL/prices/poll/$JOB_ID" || true
  fi
  if [ -n "$WATCH_PID" ]; then
    # The emulator runs in a process group of its own (set -m below): stop it with the
    # functions it spawned.
    kill -TERM -- "-$WATCH_PID" 2>/dev/null || true
    wait "$WATCH_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ]; then
    echo "---- cargo lambda watch log ($LOG) ----" >&2
    # Lines cut at 2000 characters: cargo-lambda logs its whole configuration on one line.
    tail -n 200 "$LOG" 2>/dev/null | cut -c 1-2000 >&2 || true
    echo "---- end of log ----" >&2
    say "FAILED (exit $status); database $DB kept for inspection" >&2
  elif [ -n "$DB_CREATED" ]; then
    psql "$PG_ADMIN_URL" -Xqc "drop database if exists $DB with (force)" >/dev/null || true
  fi
  redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$REDIS_KEY_PREFIX*" 2>/dev/null |
    xargs -r redis-cli -h 127.0.0.1 -p 6379 del >/dev/null 2>&1 || true
  rm -rf "$WORK"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  say "MISMATCH: $*" >&2
  exit 1
}

# --- Resources of this run --------------------------------------------------------------------

psql "$PG_ADMIN_URL" -Xqc "create database $DB" >/dev/null
DB_CREATED=yes
"$ROOT/local/stack.sh" topic "$KAFKA_TOPIC" 1
cargo build --workspace --bins --locked
"$CARGO_TARGET_DIR/debug/market-data-local" create-jobs-table
POLL_QUEUE_URL=$(curl -fsS --max-time 10 "$AWS_ENDPOINT_URL/" -d "{\"QueueName\": \"$POLL_QUEUE_NAME\"}" \
  -H 'content-type: application/x-amz-json-1.0' -H 'x-amz-target: AmazonSQS.CreateQueue' \
  -H 'authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["QueueUrl"])')
export POLL_QUEUE_URL
# cargo lambda watch hands each invocation a deadline that may already have passed (the poller then
# runs without one); where it gives a near one, keep almost none of it back.
export POLL_DEADLINE_MARGIN_MS=100
say "database $DB, topic $KAFKA_TOPIC, redis prefix $REDIS_KEY_PREFIX, jobs table $JOBS_TABLE, tick queue $POLL_QUEUE_URL"

# --- The emulator -----------------------------------------------------------------------------

if (: >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "127.0.0.1:$PORT is already taken: set LAMBDA_WATCH_PORT to a free port"
fi
set -m
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$PORT" --ignore-changes \
  --timeout "$BUILD_TIMEOUT" >"$LOG" 2>&1 &
WATCH_PID=$!
set +m

deadline=$((SECONDS + 60))
until curl -s -o /dev/null "$BASE/"; do
  if ! kill -0 "$WATCH_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    fail "cargo lambda watch did not listen on 127.0.0.1:$PORT"
  fi
  sleep 0.5
done
say "cargo lambda watch listening on $BASE"

# invoke FUNCTION EVENT_FILE: the function's answer on stdout (a first invocation compiles it).
invoke() {
  cargo lambda invoke "$1" --invoke-address 127.0.0.1 --invoke-port "$PORT" --data-file "$2" \
    || fail "cargo lambda invoke $1 --data-file $2 failed"
}

# http METHOD PATH [CURL_ARGS...]: a request to price-api's function URL; sets CODE and BODY.
http() {
  local method=$1 path=$2
  shift 2
  CODE=$(curl -s -o "$WORK/body" -w '%{http_code}' --max-time "$BUILD_TIMEOUT" -X "$method" \
    "$@" "$URL$path") || fail "$method $URL$path: no answer"
  BODY=$(cat "$WORK/body")
}

# sqs ACTION JSON: one call of SQS's JSON API on moto (which checks no signature).
sqs() {
  curl -fsS --max-time 10 "$AWS_ENDPOINT_URL/" -d "$2" \
    -H 'content-type: application/x-amz-json-1.0' -H "x-amz-target: AmazonSQS.$1" \
    -H 'authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0'
}

# check PYTHON_ASSERTS JSON: run the asserts on `v`, the parsed JSON (argv[1]).
check() {
  python3 -c "
import json, sys
v = json.loads(sys.argv[1])
$1
" "$2" || fail "unexpected answer: $2"
}

# --- price-api --------------------------------------------------------------------------------

event=local/events/apigw-v2-latest-price.json
answer=$(invoke price-api "$event")
symbol=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["queryStringParameters"]["symbol"])' "$event")
check "
import base64
assert v['statusCode'] == 200, v
body = v['body']
if v.get('isBase64Encoded'):
    body = base64.b64decode(body).decode()
q = json.loads(body)
assert q['symbol'] == '$symbol' and q['provider'] == 'simulated' and float(q['price']) > 0, q
" "$answer"
say "ok: invoke price-api $event -> 200, simulated quote for $symbol: $answer"

http GET /health
[ "$CODE" = 200 ] || fail "GET /health: $CODE $BODY"
check "assert v['status'] == 'ok', v" "$BODY"
say "ok: GET $URL/health -> 200 $BODY"

http GET /ready
[ "$CODE" = 200 ] || fail "GET /ready: $CODE $BODY"
check "
assert v['status'] == 'ready', v
deps = {d['port']: d for d in v['dependencies']}
for port, want in (('store', 'postgres'), ('cache', 'redis'), ('events', '$KAFKA_TOPIC'),
                   ('jobs', '$JOBS_TABLE')):
    assert deps[port]['status'] == 'up' and want in deps[port]['adapter'], deps[port]
" "$BODY"
say "ok: GET $URL/ready -> 200, every dependency up (postgres, redis, kafka, dynamodb)"

http GET '/prices/latest?symbol=MSFT'
[ "$CODE" = 200 ] || fail "GET /prices/latest?symbol=MSFT: $CODE $BODY"
check "assert v['symbol'] == 'MSFT' and v['provider'] == 'simulated' and float(v['price']) > 0, v" "$BODY"
say "ok: GET $URL/prices/latest?symbol=MSFT -> 200 $BODY"

# --- poller: a job made through the API; its first tick through the queue, then a wake-up ------

http POST /prices/poll -H 'content-type: application/json' \
  -d '{"symbols": ["AAPL", "msft"], "interval": 300}'
[ "$CODE" = 202 ] || fail "POST /prices/poll: $CODE $BODY"
check "assert v['status'] == 'accepted' and v['config']['symbols'] == ['AAPL', 'MSFT'], v" "$BODY"
JOB_ID=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["job_id"])' "$BODY")
say "ok: POST $URL/prices/poll -> 202, job $JOB_ID"

# The job's first tick is in the queue at once (no delay): receive it as the event source
# mapping would, and put it in local/events/poller-sqs-batch.json's shape.
received=$(sqs ReceiveMessage "{\"QueueUrl\": \"$POLL_QUEUE_URL\", \"MaxNumberOfMessages\": 10, \"WaitTimeSeconds\": 5}") ||
  fail "ReceiveMessage on $POLL_QUEUE_URL failed"
python3 -c '
import json, sys
messages = json.loads(sys.argv[1]).get("Messages", [])
assert len(messages) == 1, messages
tick = json.loads(messages[0]["Body"])
assert [j["id"] for j in tick["jobs"]] == [sys.argv[3]], tick
assert tick["symbols"] == ["AAPL", "MSFT"], tick
event = json.load(open(sys.argv[2]))
event["Records"][0]["messageId"] = messages[0]["MessageId"]
event["Records"][0]["body"] = messages[0]["Body"]
json.dump(event, open(sys.argv[4], "w"))
' "$received" local/events/poller-sqs-batch.json "$JOB_ID" "$WORK/poller-batch.json" ||
  fail "the queue does not hold the job's first tick: $received"
say "ok: the job's first tick is in $POLL_QUEUE_NAME at once"

# The wake-up first (the one-minute rule's input; it also makes cargo lambda watch build the
# poller, which would otherwise eat the tick's deadline): the job's coming minute was claimed when it was
# made, so there is nothing more to send yet; it re-publishes whatever waits.
answer=$(invoke poller local/events/poller-wake-up.json)
check "assert v['due_jobs'] == 0 and v['messages'] == 0 and 'republished' in v, v" "$answer"
say "ok: invoke poller local/events/poller-wake-up.json -> $answer"

since=$(psql "$DATABASE_URL" -XAtqc "select now()")
answer=$(invoke poller "$WORK/poller-batch.json")
check "assert v == {'batchItemFailures': []}, v" "$answer"
rows=$(psql "$DATABASE_URL" -XAtqc "select string_agg(symbol || ':' || provider, ',' order by symbol)
  from raw_market_data where fetched_at >= '$since' and event_delivered_at is not null")
[ "$rows" = "AAPL:simulated,MSFT:simulated" ] ||
  fail "raw_market_data rows of the poll (delivered to $KAFKA_TOPIC): '$rows', want AAPL and MSFT"
say "ok: invoke poller <SQS batch of the tick> -> $answer"
say "ok: raw_market_data (delivered to $KAFKA_TOPIC): $rows"

# The tick recorded its outcome once, in DynamoDB; the API shows it on the job.
http GET "/prices/poll/$JOB_ID"
[ "$CODE" = 200 ] || fail "GET /prices/poll/$JOB_ID: $CODE $BODY"
check "assert v['run_count'] == 1 and v['last_run_at'] and v['last_error'] is None, v" "$BODY"
say "ok: GET /prices/poll/$JOB_ID -> run_count 1, last_error null"


# --- ma-consumer ------------------------------------------------------------------------------

event=local/events/msk-price-events.json
answer=$(invoke ma-consumer "$event")
check "assert (v['records'], v['points_added'], v['duplicates'], v['dead_letters']) == (6, 5, 0, 1), v
# SMA-5 of AAPL; EMA-12 needs 12 points.
assert v['averages_written'] == 1, v" "$answer"
say "ok: invoke ma-consumer $event -> $answer"
answer=$(invoke ma-consumer "$event")
check "assert (v['records'], v['points_added'], v['duplicates']) == (6, 0, 5), v" "$answer"
say "ok: the same batch again (a redelivery) -> $answer"

# SMA-5 of AAPL: the mean of the fixture's five newest valid AAPL prices.
expected=$(python3 -c '
import base64, json, sys
from decimal import Decimal
points = []
for records in json.load(open(sys.argv[1]))["records"].values():
    for r in records:
        try:
            e = json.loads(base64.b64decode(r["value"]))
            price = Decimal(str(e["price"]))
        except Exception:
            continue
        if e.get("symbol") == "AAPL":
            points.append((e["timestamp"], price))
points.sort()
last = [p for _, p in points[-5:]]
assert len(last) == 5, points
print(sum(last) / 5)
' "$event")
http GET '/prices/moving-average?symbol=AAPL&window=5'
[ "$CODE" = 200 ] || fail "GET /prices/moving-average?symbol=AAPL&window=5: $CODE $BODY"
check "
from decimal import Decimal
assert v['symbol'] == 'AAPL' and v['kind'] == 'sma' and v['window'] == 5, v
assert abs(Decimal(str(v['value'])) - Decimal('$expected')) < Decimal('1e-9'), (v, '$expected')
" "$BODY"
say "ok: GET $URL/prices/moving-average?symbol=AAPL&window=5 -> 200 $BODY (expected $expected)"

http DELETE "/prices/poll/$JOB_ID"
[ "$CODE" = 204 ] || fail "DELETE /prices/poll/$JOB_ID: $CODE $BODY"
http GET "/prices/poll/$JOB_ID"
[ "$CODE" = 404 ] || fail "GET /prices/poll/$JOB_ID after DELETE: $CODE $BODY"
JOB_ID=""
say "ok: DELETE $URL/prices/poll/<job> -> 204, then 404 (nothing else to clean up)"
say "all checks passed"
