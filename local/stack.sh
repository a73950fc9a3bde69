#!/usr/bin/env bash
# The local stack, natively (no Docker): PostgreSQL, Redis, Kafka (Tansu), moto, DynamoDB Local.
#
#   local/stack.sh up              make every service reachable; start only what is not running
#   local/stack.sh down [SVC...]   stop what `up` started (all of it, or only the named services)
#   local/stack.sh env             export lines for the local runner: eval "$(local/stack.sh env)"
#   local/stack.sh topic NAME [N]  create a Kafka topic (N partitions, default 3) if missing
#   local/stack.sh status          what answers, and what `up` started
#
# Services: postgres 127.0.0.1:5432, redis 127.0.0.1:6379, tansu (Kafka) 127.0.0.1:9092,
# moto (Secrets Manager, EventBridge) 127.0.0.1:5000, DynamoDB Local 127.0.0.1:8001.
# `local/docker-compose.yml` is the same stack for people with Docker.
#
# `up` records what it starts in the state dir (pid files, logs), so `down` stops only that: a
# PostgreSQL or Redis that was already running is left alone. When MDB_STACK_STARTED_FILE is set,
# `up` also appends the names of the services this very run started to that file (local/test.sh
# uses it to stop only what it started).
#
# Environment: MDB_STATE_DIR (default ~/.cache/mdb/state), MDB_TOOLS_DIR (default
# ~/.cache/mdb/tools, where Tansu is installed once and reused), MDB_READY_TIMEOUT (seconds each
# service gets to become ready, default 60).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE_DIR=${MDB_STATE_DIR:-$HOME/.cache/mdb/state}
TOOLS_DIR=${MDB_TOOLS_DIR:-$HOME/.cache/mdb/tools}
READY_TIMEOUT=${MDB_READY_TIMEOUT:-60}

TANSU_VERSION=0.6.0
TANSU_BIN=$TOOLS_DIR/bin/tansu
KAFKA_URL=tcp://127.0.0.1:9092
KAFKA_TOPIC=price-events
KAFKA_PARTITIONS=3
PG_URL=postgres://postgres@127.0.0.1:5432/postgres
MOTO_URL=http://127.0.0.1:5000

SERVICES=(postgres redis tansu moto dynamodb)

say() { printf '%-9s %s\n' "$1" "$2"; }
die() { printf 'stack.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  command -v apt-get >/dev/null || die "$* missing and apt-get unavailable: install it by hand"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

tcp_open() { timeout 2 bash -c ": >/dev/tcp/$1/$2" 2>/dev/null; }

# wait_ready NAME PID CHECK...: run CHECK until it succeeds. Fails after READY_TIMEOUT seconds,
# or at once when PID (if given) has died; shows the end of the service's log either way.
wait_ready() {
  local name=$1 pid=$2 deadline=$((SECONDS + READY_TIMEOUT))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$STATE_DIR/$name.log" >&2 2>/dev/null || true
      die "$name exited before it was ready (log: $STATE_DIR/$name.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$STATE_DIR/$name.log" >&2 2>/dev/null || true
      die "$name not ready after ${READY_TIMEOUT}s (log: $STATE_DIR/$name.log)"
    fi
    sleep 0.5
  done
}

# spawn NAME CMD...: start CMD detached from this shell (own session, so a Ctrl-C in the
# terminal does not reach it), output to NAME.log, pid to NAME.pid.
spawn() {
  local name=$1
  shift
  (cd "$STATE_DIR" && exec setsid "$@" >"$STATE_DIR/$name.log" 2>&1 </dev/null) &
  echo $! >"$STATE_DIR/$name.pid"
}

# The pid recorded for NAME, if that process still runs and its command line still names it
# (tansu, moto_server, redis-server): pids get reused.
live_pid() {
  local name=$1 pid
  pid=$(cat "$STATE_DIR/$name.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  ps -o args= -p "$pid" | grep -qi "$name" && echo "$pid"
}

record_started() {
  if [ -n "${MDB_STACK_STARTED_FILE:-}" ]; then echo "$1" >>"$MDB_STACK_STARTED_FILE"; fi
}

# --- PostgreSQL --------------------------------------------------------------------------------

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }

# "VERSION NAME" of the cluster on port 5432.
pg_cluster() { pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 { print $1, $2; exit }'; }

# A fresh Debian cluster wants passwords over TCP; the project's machines use trust on loopback.
pg_trust_loopback() {
  local hba
  hba=/etc/postgresql/$(pg_cluster | tr ' ' /)/pg_hba.conf
  as_root sed -i -e '1i host all all 127.0.0.1/32 trust' -e '1i host all all ::1/128 trust' "$hba"
}

up_postgres() {
  local how=started cluster
  if command -v pg_isready >/dev/null && pg_ready; then
    say postgres "already running (127.0.0.1:5432)"
  else
    if ! command -v pg_ctlcluster >/dev/null; then
      say postgres "installing (apt-get install postgresql)"
      apt_install postgresql
      how=installed+started
    fi
    cluster=$(pg_cluster)
    [ -n "$cluster" ] || die "no PostgreSQL cluster on port 5432 (see pg_lsclusters)"
    # shellcheck disable=SC2086  # "VERSION NAME" is two arguments
    if [ "$how" = installed+started ]; then
      pg_trust_loopback
      # The package may have started the cluster already: restart starts it either way.
      as_root pg_ctlcluster --skip-systemctl-redirect $cluster restart
    else
      as_root pg_ctlcluster --skip-systemctl-redirect $cluster start
    fi
    echo "$cluster" >"$STATE_DIR/postgres.cluster"
    record_started postgres
    wait_ready postgres "" pg_ready
    say postgres "$how (127.0.0.1:5432, cluster $cluster)"
  fi
  # The service's database (DATABASE_URL); the tests work in databases of their own.
  if [ -z "$(psql "$PG_URL" -XAtqc "select 1 from pg_database where datname = 'test'")" ]; then
    psql "$PG_URL" -Xqc 'create database test' >/dev/null
  fi
}

down_postgres() {
  local cluster
  cluster=$(cat "$STATE_DIR/postgres.cluster" 2>/dev/null) || return 1
  # shellcheck disable=SC2086
  as_root pg_ctlcluster --skip-systemctl-redirect $cluster stop || die "could not stop cluster $cluster"
  rm -f "$STATE_DIR/postgres.cluster"
}

# --- Redis -------------------------------------------------------------------------------------

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

up_redis() {
  local how=started
  if command -v redis-cli >/dev/null && redis_ready; then
    say redis "already running (127.0.0.1:6379)"
    return
  fi
  if ! command -v redis-server >/dev/null; then
    say redis "installing (apt-get install redis-server)"
    apt_install redis-server
    how=installed+started
  fi
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir "$STATE_DIR" --logfile "$STATE_DIR/redis.log" --pidfile "$STATE_DIR/redis.pid" >/dev/null
  record_started redis
  wait_ready redis "" redis_ready
  say redis "$how (127.0.0.1:6379)"
}

# --- Kafka: Tansu ------------------------------------------------------------------------------

tansu_installed() { [ -x "$TANSU_BIN" ] && "$TANSU_BIN" --version 2>/dev/null | grep -qF "$TANSU_VERSION"; }

# Built from crates.io once (about 25 minutes on 2 cores) into TOOLS_DIR, then reused. The lock
# keeps two concurrent `up`s from building it twice.
install_tansu() {
  mkdir -p "$TOOLS_DIR"
  (
    flock 9
    if ! tansu_installed; then
      say tansu "installing $TANSU_VERSION into $TOOLS_DIR (cargo install, ~25 min on 2 cores)"
      cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore \
        --root "$TOOLS_DIR" >&2
    fi
  ) 9>"$TOOLS_DIR/.tansu-install.lock"
  tansu_installed || die "tansu $TANSU_VERSION did not install into $TOOLS_DIR"
}

# A Kafka-level check: the broker answers a Metadata request.
kafka_ready() { tcp_open 127.0.0.1 9092 && timeout 10 "$TANSU_BIN" topic list --broker "$KAFKA_URL"; }

up_tansu() {
  local how=started
  if tcp_open 127.0.0.1 9092; then
    say tansu "already running (127.0.0.1:9092)"
  else
    if ! tansu_installed; then
      install_tansu
      how=installed+started
    fi
    # In-memory storage: every start is an empty cluster. Advertise 127.0.0.1, not localhost
    # (librdkafka may resolve localhost to ::1, where nothing listens). Tansu also takes its
    # settings from the environment and from a .env file in its working directory or a parent
    # of it: the flags below win over both; it runs in the state dir (not a checkout with a
    # .env) and the settings without a flag here are cleared.
    spawn tansu env -u SCHEMA_REGISTRY -u OTEL_EXPORTER_OTLP_ENDPOINT \
      "$TANSU_BIN" broker \
      --storage-engine memory://tansu/ \
      --listener-url "$KAFKA_URL" \
      --advertised-listener-url "$KAFKA_URL"
    record_started tansu
    wait_ready tansu "$(cat "$STATE_DIR/tansu.pid")" kafka_ready
    say tansu "$how (127.0.0.1:9092, in-memory storage)"
  fi
  ensure_topic "$KAFKA_TOPIC" "$KAFKA_PARTITIONS"
}

topic_exists() {
  timeout 10 "$TANSU_BIN" topic list --broker "$KAFKA_URL" 2>/dev/null | grep -qF "\"name\":\"$1\""
}

# Tansu 0.6 does not auto-create topics: producing to an unknown one times out.
ensure_topic() {
  local name=$1 partitions=${2:-3}
  # Tansu's CLI is the admin client, also for a Kafka that is not Tansu.
  tansu_installed || install_tansu
  if topic_exists "$name"; then
    say topic "$name exists"
    return
  fi
  # `topic create` fails when the topic exists, so a racing creator is fine if it now does.
  local out
  if out=$(timeout 30 "$TANSU_BIN" topic create "$name" --partitions "$partitions" \
    --broker "$KAFKA_URL" 2>&1) || topic_exists "$name"; then
    say topic "$name created (partitions: $partitions)"
  else
    die "could not create topic $name: $out"
  fi
}

# --- moto: Secrets Manager, EventBridge --------------------------------------------------------

moto_ready() { curl -fs -o /dev/null "$MOTO_URL/moto-api/"; }

moto_bin() {
  if command -v moto_server >/dev/null; then
    command -v moto_server
  elif [ -x "$TOOLS_DIR/moto-venv/bin/moto_server" ]; then
    echo "$TOOLS_DIR/moto-venv/bin/moto_server"
  else
    return 1
  fi
}

# pip into the current Python; where that Python is externally managed (Debian's own, PEP
# 668), into a virtualenv in the tools dir instead.
install_moto() {
  say moto "installing (pip install 'moto[server]')"
  if python3 -m pip install -q 'moto[server]' >/dev/null 2>&1 && hash -r && moto_bin >/dev/null; then
    return
  fi
  python3 -m venv "$TOOLS_DIR/moto-venv" >&2
  "$TOOLS_DIR/moto-venv/bin/pip" install -q 'moto[server]' >&2
}

up_moto() {
  local how=started bin
  if moto_ready; then
    say moto "already running (127.0.0.1:5000)"
    return
  fi
  if ! bin=$(moto_bin); then
    install_moto
    bin=$(moto_bin)
    how=installed+started
  fi
  spawn moto "$bin" -H 127.0.0.1 -p 5000
  record_started moto
  wait_ready moto "$(cat "$STATE_DIR/moto.pid")" moto_ready
  say moto "$how (127.0.0.1:5000)"
}

# --- DynamoDB Local (port 8001) ---------------------------------------------------------------

DYNAMODB_PKG=amplify-dynamodb-simulator@2.9.30
DYNAMODB_DIR=$TOOLS_DIR/dynamodb-local

dynamodb_ready() { tcp_open 127.0.0.1 8001; }

# The jar inside the npm package: <package>/emulator/DynamoDBLocal.jar (searched, so a
# different layout of a later package version is still found).
dynamodb_jar() { find "$DYNAMODB_DIR" -name DynamoDBLocal.jar -print -quit 2>/dev/null | grep .; }

# Amazon's DynamoDB Local, shipped inside the npm package; fetched once into the tools dir.
install_dynamodb() {
  command -v npm >/dev/null || die "npm is needed to fetch $DYNAMODB_PKG"
  mkdir -p "$DYNAMODB_DIR"
  (
    flock 9
    if ! dynamodb_jar >/dev/null; then
      say dynamodb "installing $DYNAMODB_PKG into $DYNAMODB_DIR (npm pack)"
      local tgz
      tgz=$(cd "$DYNAMODB_DIR" && npm pack --silent "$DYNAMODB_PKG" | tail -n 1)
      tar -xzf "$DYNAMODB_DIR/$tgz" -C "$DYNAMODB_DIR"
      rm -f "$DYNAMODB_DIR/$tgz"
    fi
  ) 9>"$TOOLS_DIR/.dynamodb-install.lock"
  dynamodb_jar >/dev/null || die "no DynamoDBLocal.jar in $DYNAMODB_DIR"
}

up_dynamodb() {
  local how=started jar lib
  if dynamodb_ready; then
    say dynamodb "already running (127.0.0.1:8001)"
    return
  fi
  command -v java >/dev/null || die "java (17 or later) is needed for DynamoDB Local"
  if ! dynamodb_jar >/dev/null; then
    install_dynamodb
    how=installed+started
  fi
  jar=$(dynamodb_jar)
  lib=$(dirname "$jar")/DynamoDBLocal_lib
  # The command line names DynamoDBLocal, so live_pid recognises it as "dynamodb".
  spawn dynamodb java "-Djava.library.path=$lib" -jar "$jar" -inMemory -sharedDb -port 8001
  record_started dynamodb
  wait_ready dynamodb "$(cat "$STATE_DIR/dynamodb.pid")" dynamodb_ready
  say dynamodb "$how (127.0.0.1:8001, in-memory)"
}

# --- Stopping ----------------------------------------------------------------------------------

# Stop the process in NAME.pid if `up` started it: TERM, then KILL after 15 s.
stop_pid() {
  local name=$1 pid i
  if ! pid=$(live_pid "$name"); then
    rm -f "$STATE_DIR/$name.pid"
    return 1
  fi
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$STATE_DIR/$name.pid"
}

# Stop NAME if `up` started it (fails when it did not).
stop_service() {
  case $1 in
    postgres) down_postgres ;;
    *) stop_pid "$1" ;;
  esac
}

down() {
  local targets=("$@") name i
  [ ${#targets[@]} -gt 0 ] || targets=("${SERVICES[@]}")
  # In reverse start order.
  for ((i = ${#targets[@]} - 1; i >= 0; i--)); do
    name=${targets[i]}
    case " ${SERVICES[*]} " in
      *" $name "*) ;;
      *) die "unknown service: $name (services: ${SERVICES[*]})" ;;
    esac
    if stop_service "$name"; then
      say "$name" stopped
    else
      say "$name" "not started by stack.sh, left alone"
    fi
  done
}

# --- Commands ----------------------------------------------------------------------------------

up() {
  up_postgres
  up_redis
  up_tansu
  up_moto
  up_dynamodb
}

# The active lines of .env.example, as exports: one list of the stack's variables.
print_env() {
  sed -n "s/^\([A-Z][A-Z0-9_]*\)=\(.*\)$/export \1='\2'/p" "$HERE/.env.example"
}

status() {
  local state
  pg_ready && state=up || state=down
  say postgres "$state$([ -f "$STATE_DIR/postgres.cluster" ] && echo ', started by stack.sh')"
  redis_ready && state=up || state=down
  say redis "$state$(live_pid redis >/dev/null && echo ', started by stack.sh')"
  tcp_open 127.0.0.1 9092 && state=up || state=down
  say tansu "$state$(live_pid tansu >/dev/null && echo ', started by stack.sh')"
  moto_ready && state=up || state=down
  say moto "$state$(live_pid moto >/dev/null && echo ', started by stack.sh')"
  dynamodb_ready && state=up || state=down
  say dynamodb "$state$(live_pid dynamodb >/dev/null && echo ', started by stack.sh')"
}

usage() { sed -n '2,8s/^# \{0,1\}//p' "$0"; }

mkdir -p "$STATE_DIR"
case ${1:-} in
  up) up ;;
  down) shift; down "$@" ;;
  env) print_env ;;
  topic)
    [ -n "${2:-}" ] || die "usage: $0 topic NAME [PARTITIONS]"
    ensure_topic "$2" "${3:-$KAFKA_PARTITIONS}"
    ;;
  status) status ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
