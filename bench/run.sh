#!/usr/bin/env bash
# Benchmarks, chatoxide beside the Node socket.io baseline in the same run.
#
#   bench/run.sh durable [REPS]   acked `message` throughput (closed loop, 1 room and 50 rooms)
#                                 and ack latency at a fixed rate (open loop), on chatoxide with
#                                 SQLite, chatoxide with PostgreSQL, and Node socket.io + pg
#   bench/run.sh history          a page of 50 from a room of 1,000,000 messages (SQLite, PostgreSQL)
#   bench/run.sh idle [REPS]      CONNECTIONS (5000) idle WebSocket connections held: server memory
#                                 per connection (RSS and kernel TCP buffers), chatoxide and Node
#   bench/run.sh cluster [REPS]   cross-node delivery: one room, 150 receivers and 15 senders spread
#                                 over 3 chatoxide nodes on Redis + PostgreSQL, against the same
#                                 load on 1 node, at stepped rates (RATES, default "200 500 1000")
#
# Runs are interleaved (A B C A B C ...); the server is pinned to core 0, the load tool to core 1.
# Each run gets a fresh database. chatoxide runs with its rate limits off (the baseline has none,
# and one load user sends far more than a person). Results: one JSON line per run in bench/results/, then the
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
server_pids=

db=
server_dir=
stop_server() {
  for pid in $server_pids; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  server_pids=
  case "$db" in
    postgres*) psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS ${db##*/} WITH (FORCE)" >/dev/null ;;
  esac
  [ -n "$server_dir" ] && rm -rf "$server_dir"
  db=
  server_dir=
}
trap stop_server EXIT

wait_ready() {
  local at=${1:-$port}
  for _ in $(seq 100); do
    # Both servers answer the Engine.IO handshake (Node's has no /healthz).
    curl -sf --max-time 1 "http://127.0.0.1:$at/socket.io/?EIO=4&transport=polling" >/dev/null 2>&1 && return 0
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

# start TARGET: chatoxide-sqlite | chatoxide-postgres | node-postgres; sets $db and $server_pids
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
    RUST_LOG=warn CHATOXIDE_RATE_LIMITS=false DATABASE_URL=$db PORT=$port HOST=127.0.0.1 taskset -c 0 target/release/chatoxide >"$dir/server.log" 2>&1 &
  fi
  server_pids=$!
  wait_ready
}

# start_cluster N: N chatoxide nodes on one fresh PostgreSQL database and a fresh Redis prefix,
# all pinned to core 0 (one node gets the same CPU as three); sets $urls
start_cluster() {
  server_dir=$(mktemp -d)
  db=$(fresh_pg cluster)
  local prefix="bench-$$-$RANDOM" i
  urls=
  for i in $(seq 0 $(($1 - 1))); do
    RUST_LOG=warn CHATOXIDE_RATE_LIMITS=false DATABASE_URL=$db REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379} REDIS_PREFIX=$prefix \
      CHATOXIDE_REDIS_BUFFER=${REDIS_BUFFER:-65536} PORT=$((port + i)) HOST=127.0.0.1 \
      taskset -c 0 target/release/chatoxide >"$server_dir/node$i.log" 2>&1 &
    server_pids="$server_pids $!"
    wait_ready $((port + i))
    urls="$urls${urls:+,}http://127.0.0.1:$((port + i))"
  done
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
  idle)
    for rep in $(seq "$reps"); do
      for target in chatoxide-sqlite node-postgres; do
        start "$target"
        load idle --url "http://127.0.0.1:$port" --pid "$server_pids" --connections "${CONNECTIONS:-5000}" --prefix "r$rep" --label "$target idle"
        stop_server
      done
    done
    ;;
  cluster)
    for rep in $(seq "$reps"); do
      for rate in ${RATES:-200 500 1000}; do
        for nodes in 1 3; do
          start_cluster "$nodes"
          load cluster --urls "$urls" --rate "$rate" --seconds "$seconds" --prefix "r$rep-$rate-$nodes" --label "chatoxide ${nodes}-node $rate/s"
          stop_server
        done
      done
    done
    ;;
  *)
    echo "usage: bench/run.sh durable [REPS] | history | idle [REPS] | cluster [REPS]" >&2
    exit 2
    ;;
esac

node bench/summarize.js "$results"
