#!/usr/bin/env bash
# Benchmarks, chatoxide beside the Node socket.io baseline in the same run.
#
#   bench/run.sh durable [REPS]   acked `message` throughput (closed loop, 1 room and 50 rooms)
#                                 and ack latency at a fixed rate (open loop), on chatoxide with
#                                 SQLite, chatoxide with PostgreSQL, and Node socket.io + pg
#   bench/run.sh history          a page of 50 from a room of 1,000,000 messages (SQLite, PostgreSQL)
#
# Runs are interleaved (A B C A B C ...); the server is pinned to core 0, the load tool to core 1.
# Each run gets a fresh database. Results: one JSON line per run in bench/results/, then the
# medians and the ratios to Node. Settings: SECONDS_PER_RUN (10), RATE (5000 msgs/s),
# PG (postgres://postgres@127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-durable}
reps=${2:-3}
seconds=${SECONDS_PER_RUN:-10}
rate=${RATE:-5000}
pg=${PG:-postgres://postgres@127.0.0.1:5432}
port=3200 # outside the ephemeral range 32768-60999
results=bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$scenario.jsonl
mkdir -p bench/results

cargo build --release --quiet -p chatoxide -p chatoxide-bench
(cd bench/node-baseline && npm ci --no-audit --no-fund --loglevel=error)
server_pid=

db=
server_dir=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
  case "$db" in
    postgres*) psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ${db##*/} WITH (FORCE)" >/dev/null ;;
  esac
  [ -n "$server_dir" ] && rm -rf "$server_dir"
  db=
  server_dir=
}
trap stop_server EXIT

wait_ready() {
  for _ in $(seq 100); do
    # Both servers answer the Engine.IO handshake (Node's has no /healthz).
    curl -sf --max-time 1 "http://127.0.0.1:$port/socket.io/?EIO=4&transport=polling" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start" >&2
  return 1
}

fresh_pg() {
  local name="bench_$1_$$_$RANDOM"
  psql "$pg/postgres" -qc "CREATE DATABASE $name" >/dev/null
  echo "$pg/$name"
}

# start TARGET: chatoxide-sqlite | chatoxide-postgres | node-postgres; sets $db and $server_pid
start() {
  local dir
  dir=$(mktemp -d)
  server_dir=$dir
  case "$1" in
    chatoxide-sqlite) db="sqlite://$dir/chat.db?mode=rwc" ;;
    chatoxide-postgres) db=$(fresh_pg chatoxide) ;;
    node-postgres) db=$(fresh_pg node) ;;
  esac
  if [ "$1" = node-postgres ]; then
    DATABASE_URL=$db PORT=$port taskset -c 0 node bench/node-baseline/durable.js >"$dir/server.log" 2>&1 &
  else
    RUST_LOG=warn DATABASE_URL=$db PORT=$port HOST=127.0.0.1 taskset -c 0 target/release/chatoxide >"$dir/server.log" 2>&1 &
  fi
  server_pid=$!
  wait_ready
}

load() { taskset -c 1 target/release/chatoxide-load "$@" | tee -a "$results"; }

case "$scenario" in
  durable)
    # Every load gets a fresh server and database, and PostgreSQL a CHECKPOINT first, so that
    # one run's background flushing does not land in the next run's tail latency.
    loads=(
      "one-room --rooms 1 --window 4"
      "many-rooms --rooms 50 --window 8"
      "fixed-rate --rooms 50 --rate $rate"
    )
    for rep in $(seq "$reps"); do
      for spec in "${loads[@]}"; do
        read -r kind options <<<"$spec"
        for target in chatoxide-sqlite chatoxide-postgres node-postgres; do
          psql "$pg/postgres" -qc CHECKPOINT >/dev/null
          start "$target"
          # shellcheck disable=SC2086 # $options is a list of flags
          load durable --url "http://127.0.0.1:$port" --connections 50 $options --seconds "$seconds" --prefix "r$rep-$kind" --label "$target $kind"
          stop_server
        done
      done
    done
    ;;
  history)
    for target in chatoxide-sqlite chatoxide-postgres; do
      start "$target"
      load history --url "http://127.0.0.1:$port" --database-url "$db" --label "$target"
      stop_server
    done
    ;;
  *)
    echo "usage: bench/run.sh durable [REPS] | history" >&2
    exit 2
    ;;
esac

node bench/summarize.js "$results"
