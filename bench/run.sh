#!/usr/bin/env bash
# Benchmarks, chatoxide beside the Node socket.io baseline (bench/node-baseline/server.js) in the
# same run, driven by the same load tool (bench/src, `chatoxide-load`).
#
#   bench/run.sh idle [REPS]      CONNECTIONS (5000) idle WebSocket connections held: server memory
#                                 per connection (RSS and kernel TCP buffers)
#   bench/run.sh fanout [REPS]    one room of RECEIVERS (1000; also 10000) and one sender at stepped
#                                 rates (RATES): delivery p99, loss, server CPU per delivery
#   bench/run.sh roundtrip [REPS] ack latency p50/p99/p99.9 at a fixed RATE (5000 commands/s, 50
#                                 connections in rooms of 5): `typing` (nothing stored) and
#                                 `message` (stored before the ack; SQLite, PostgreSQL)
#   bench/run.sh storm [REPS]     CONNECTIONS (10000) connecting at once (1000 handshakes in
#                                 flight): connections per second until all are in, failures
#   bench/run.sh durable [REPS]   acked `message` throughput (closed loop, 1 room and 50 rooms) on
#                                 SQLite, PostgreSQL, and Node socket.io + pg
#   bench/run.sh outbox [REPS]    the durable scenario (50 rooms) with CHATOXIDE_OUTBOX_URL off, on NATS
#                                 JetStream (NATS_URL) and on RabbitMQ (AMQP_URL), SQLite and
#                                 PostgreSQL: acked throughput, and the outbox's lag p50/p99/max
#                                 while loaded and its drain time after (bench/outbox-lag.js)
#   bench/run.sh capacity [REPS]  19,000 connections held by one server process (two load
#                                 processes: 20,000 open files each at most), round-trip latency
#                                 beside them against beside none
#   bench/run.sh cluster [REPS]   the fanout scenario over 3 chatoxide nodes on Redis + PostgreSQL
#                                 against 1 node, at stepped RATES
#   bench/run.sh mixed [REPS]     the fanout scenario over pairs of nodes on one Redis (two senders,
#                                 one on each node): two Node socket.io servers on
#                                 @socket.io/redis-adapter, two chatoxide nodes in its format
#                                 (REDIS_ADAPTER=node), two on chatoxide's native adapter, and one
#                                 Node server with one chatoxide node (the rolling migration)
#   bench/run.sh history          a page of 50 from a room of 1,000,000 messages (SQLite, PostgreSQL)
#   bench/run.sh joinstorm [REPS] SOCKETS (5000) connected sockets send `join` for one room at the same
#                                 moment: time to the last answer, failures, server CPU, the next
#                                 message delivered once to each (SQLite, PostgreSQL; Node with the
#                                 join in memory, and stored in PostgreSQL; rate limits off, and
#                                 chatoxide once more with every default)
#   bench/run.sh reconnect [REPS] CLIENTS (10000) in one room, the server killed (SIGKILL) and started
#                                 again: time until every client is back in its room, with
#                                 socket.io-client's reconnection delays and every default setting
#                                 (TARGETS=chatoxide-cluster: a node of a cluster restarted while
#                                 another stays up)
#   bench/run.sh recovery [REPS]  the fanout scenario (RECEIVERS 1000, RATES 10,30,100,200) with
#                                 connection state recovery off, then on (RECOVERY=1: each
#                                 broadcast journaled, its offset one more argument): chatoxide on
#                                 SQLite (the journal in memory), Node socket.io + pg
#                                 (`connectionStateRecovery: {}`), a chatoxide cluster node (the
#                                 journal a Redis stream); TARGETS picks them
#   bench/run.sh floor [REPS]     no server: the floor of the fanout's CPU per delivery.
#                                 chatoxide-load's own sender (core 0) writes one WebSocket frame
#                                 of a fanout delivery's size to each of RECEIVERS (1000; also
#                                 10000) receivers (its own, core 1) per message at stepped RATES
#                                 (10,30,100,200; 1,3,10,20 for 10000: the fanout's sends per
#                                 second), one write each, by a plain non-blocking send() loop and
#                                 by tokio's write_all from one task: sender CPU per send
#
# Runs are interleaved (A B A B ...); the server is pinned to core 0, the load tool to core 1.
# Each run gets a fresh server and database. chatoxide runs with its rate limits off (the
# baseline has none, and one load user sends far more than a person), unless DEFAULTS=1 (the
# reconnect storm, and the `defaults` joinstorm runs, keep every default); connection state
# recovery is off unless RECOVERY=1 (the `recovery` scenario). Results: one JSON line per run (per
# step for fanout and floor) in bench/results/, then the medians and the ratios to Node.
# Settings: SECONDS_PER_RUN (10), PG (postgres://postgres@127.0.0.1:5432); TARGETS picks the
# servers of the joinstorm, reconnect and recovery scenarios (e.g. TARGETS=chatoxide-sqlite); the
# binaries are looked for in CARGO_TARGET_DIR (target) as cargo builds them. ALLOCATOR=system
# builds chatoxide without mimalloc (in target/system-alloc) to weigh the allocator.
set -euo pipefail
cd "$(dirname "$0")/.."

scenario=${1:-durable}
reps=${2:-3}
seconds=${SECONDS_PER_RUN:-10}
pg=${PG:-postgres://postgres@127.0.0.1:5432}
port=3200 # outside the ephemeral range 32768-60999
target_dir=${CARGO_TARGET_DIR:-target}
build_flags=()
if [ "${ALLOCATOR:-mimalloc}" = system ]; then
  target_dir=target/system-alloc
  build_flags=(--no-default-features --target-dir "$target_dir")
fi
bin=$target_dir/release
redis=${REDIS_URL:-redis://127.0.0.1:6379}
results=bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$scenario.jsonl
mkdir -p bench/results

if [ "$scenario" = floor ]; then
  cargo build --release --quiet -p chatoxide-bench
else
  cargo build --release --quiet -p chatoxide -p chatoxide-bench "${build_flags[@]}"
  (cd bench/node-baseline && npm ci --no-audit --no-fund --loglevel=error)
fi
server_pids=

db=
server_dir=
peer_pids=
redis_prefix=
stop_server() {
  server_pids="$server_pids $peer_pids"
  peer_pids=
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

# start TARGET: chatoxide-sqlite | chatoxide-postgres | chatoxide-cluster | node-postgres |
# node-memory: a fresh database, then the server; sets $db, $server_dir and $server_pids.
# chatoxide-cluster is a node on Redis and PostgreSQL with a second node beside it (on the next
# port, never killed): the load goes to the first.
start() {
  server_dir=$(mktemp -d)
  case "$1" in
    chatoxide-sqlite) db="sqlite://$server_dir/chat.db?mode=rwc" ;;
    chatoxide-postgres) db=$(fresh_pg chatoxide) ;;
    chatoxide-cluster)
      db=$(fresh_pg cluster)
      redis_prefix="bench-$$-$RANDOM"
      port=$((port + 1)) launch "$1"
      peer_pids=$server_pids
      ;;
    node-*) db=$(fresh_pg node) ;;
  esac
  launch "$1"
}

# launch TARGET: the server on $db (again, after a kill), pinned to core 0; sets $server_pids
launch() {
  local settings=(CHATOXIDE_RATE_LIMITS=false)
  [ "${DEFAULTS:-}" = 1 ] && settings=()
  [ "${RECOVERY:-}" = 1 ] && settings+=(CHATOXIDE_CONNECTION_STATE_RECOVERY=true)
  [ -n "${OUTBOX_URL:-}" ] && settings+=(CHATOXIDE_OUTBOX_URL="$OUTBOX_URL" CHATOXIDE_OUTBOX_PREFIX="bench-$$-$RANDOM")
  case "$1" in
    node-postgres) RECOVERY=${RECOVERY:-} JOIN_STORE=${JOIN_STORE:-} JOIN_EVENTS=${JOIN_EVENTS:-} DATABASE_URL=$db PORT=$port \
      taskset -c 0 node bench/node-baseline/server.js >>"$server_dir/server.log" 2>&1 & ;;
    node-memory) RECOVERY=${RECOVERY:-} JOIN_STORE= JOIN_EVENTS=${JOIN_EVENTS:-} DATABASE_URL=$db PORT=$port \
      taskset -c 0 node bench/node-baseline/server.js >>"$server_dir/server.log" 2>&1 & ;;
    chatoxide-cluster) env "${settings[@]}" RUST_LOG=warn DATABASE_URL="$db" PORT=$port HOST=127.0.0.1 \
      REDIS_URL="$redis" REDIS_PREFIX="$redis_prefix" \
      taskset -c 0 "$bin/chatoxide" >>"$server_dir/server.log" 2>&1 & ;;
    *) env "${settings[@]}" RUST_LOG=warn DATABASE_URL="$db" PORT=$port HOST=127.0.0.1 \
      taskset -c 0 "$bin/chatoxide" >>"$server_dir/server.log" 2>&1 & ;;
  esac
  server_pids=$!
  echo "$server_pids" >"$server_dir/pid"
  wait_ready
}

# start_nodes KIND...: one cluster node per KIND on one fresh PostgreSQL database and a fresh
# Redis prefix, all pinned to core 0 (one node gets the same CPU as three), on consecutive ports;
# sets $urls. KIND: chatoxide (the native adapter, socketioxide-redis), chatoxide-node
# (REDIS_ADAPTER=node: @socket.io/redis-adapter's format) or node (the Node baseline on
# @socket.io/redis-adapter, its `key` the prefix).
start_nodes() {
  server_dir=$(mktemp -d)
  db=$(fresh_pg cluster)
  local prefix="bench-$$-$RANDOM" i=0 kind at
  urls=
  for kind in "$@"; do
    at=$((port + i))
    case "$kind" in
      node) REDIS_URL=$redis REDIS_PREFIX=$prefix DATABASE_URL=$db PORT=$at \
        taskset -c 0 node bench/node-baseline/server.js >"$server_dir/node$i.log" 2>&1 & ;;
      chatoxide | chatoxide-node)
        local adapter=socketioxide
        [ "$kind" = chatoxide-node ] && adapter=node
        RUST_LOG=warn CHATOXIDE_RATE_LIMITS=false DATABASE_URL=$db REDIS_URL=$redis REDIS_PREFIX=$prefix \
          REDIS_ADAPTER=$adapter CHATOXIDE_REDIS_BUFFER=${REDIS_BUFFER:-65536} PORT=$at HOST=127.0.0.1 \
          taskset -c 0 "$bin/chatoxide" >"$server_dir/node$i.log" 2>&1 &
        ;;
      *) echo "unknown node kind $kind" >&2; return 1 ;;
    esac
    server_pids="${server_pids:+$server_pids }$!"
    wait_ready "$at"
    urls="$urls${urls:+,}http://127.0.0.1:$at"
    i=$((i + 1))
  done
}

load() { taskset -c 1 "$bin/chatoxide-load" "$@" | tee -a "$results"; }

# fanout_run TARGET RECEIVERS RATES REP LABEL: one fanout run (every step) on a fresh TARGET
fanout_run() {
  start "$1"
  load fanout --urls "$url" --pids "$server_pids" --receivers "$2" --rates "$3" \
    --seconds "$seconds" --concurrency 500 --prefix "r$4" --label "$1 $5"
  stop_server
}

# timed TARGET LOAD-ARGS...: one latency-sensitive load on a fresh server and database, after a
# PostgreSQL CHECKPOINT, so that one run's background flushing does not land in the next run's
# tail latency.
timed() {
  local target=$1
  shift
  psql "$pg/postgres" -qc CHECKPOINT >/dev/null
  start "$target"
  load "$@"
  stop_server
}

url="http://127.0.0.1:$port"
case "$scenario" in
  idle)
    for rep in $(seq "$reps"); do
      for target in chatoxide-sqlite node-postgres; do
        start "$target"
        load idle --url "$url" --pid "$server_pids" --connections "${CONNECTIONS:-5000}" --prefix "r$rep" --label "$target idle"
        stop_server
      done
    done
    ;;
  fanout)
    # The steps reach past each server's capacity; a step's queues drain in the gap after it.
    for receivers in ${RECEIVERS:-1000 10000}; do
      if [ "$receivers" -ge 10000 ]; then steps=${RATES:-1,2,3,5,10,20,40}; else steps=${RATES:-10,20,30,50,100,200,400,800}; fi
      for rep in $(seq "$reps"); do
        for target in chatoxide-sqlite node-postgres; do
          fanout_run "$target" "$receivers" "$steps" "$rep" "fanout-$receivers"
        done
      done
    done
    ;;
  recovery)
    # Each target off then on, on a fresh server each time. The steps go past Node's capacity
    # (about 30 msgs/s to 1,000 receivers in the fanout scenario), not past chatoxide's.
    for rep in $(seq "$reps"); do
      for target in ${TARGETS:-chatoxide-sqlite node-postgres chatoxide-cluster}; do
        for state in "0 off" "1 on"; do
          read -r on name <<<"$state"
          RECOVERY=$on fanout_run "$target" "${RECEIVERS:-1000}" "${RATES:-10,30,100,200}" "$rep" \
            "recovery-$name-${RECEIVERS:-1000}"
        done
      done
    done
    ;;
  floor)
    # The load tool pins its sender and receivers itself (--sender-core 0, --receiver-core 1).
    for receivers in ${RECEIVERS:-1000 10000}; do
      if [ "$receivers" -ge 10000 ]; then steps=${RATES:-1,3,10,20}; else steps=${RATES:-10,30,100,200}; fi
      for rep in $(seq "$reps"); do
        for via in write tokio; do
          "$bin/chatoxide-load" floor --receivers "$receivers" --rates "$steps" --via "$via" \
            --seconds "$seconds" --prefix "r$rep" --label "$via floor-$receivers" | tee -a "$results"
        done
      done
    done
    ;;
  roundtrip)
    for rep in $(seq "$reps"); do
      for command in typing message; do
        for target in chatoxide-sqlite chatoxide-postgres node-postgres; do
          timed "$target" durable --url "$url" --connections 50 --rooms 10 --rate "${RATE:-5000}" --command "$command" \
            --seconds "$seconds" --prefix "r$rep" --label "$target roundtrip-$command"
        done
      done
    done
    ;;
  storm)
    for rep in $(seq "$reps"); do
      for target in chatoxide-sqlite node-postgres; do
        start "$target"
        load idle --url "$url" --pid "$server_pids" --connections "${CONNECTIONS:-10000}" --concurrency 1000 \
          --settle 1 --prefix "r$rep" --label "$target storm"
        stop_server
      done
    done
    ;;
  durable)
    for rep in $(seq "$reps"); do
      for spec in "one-room --rooms 1 --window 4" "many-rooms --rooms 50 --window 8"; do
        read -r kind options <<<"$spec"
        for target in chatoxide-sqlite chatoxide-postgres node-postgres; do
          # shellcheck disable=SC2086 # $options is a list of flags
          timed "$target" durable --url "$url" --connections 50 $options --seconds "$seconds" --prefix "r$rep-$kind" --label "$target $kind"
        done
      done
    done
    ;;
  outbox)
    # The durable scenario's load (50 rooms, closed loop) with the outbox off, on NATS JetStream
    # and on RabbitMQ: acked throughput beside the same server without it (and Node's), and the
    # outbox's lag, sampled from /metrics while loaded, then the time to drain.
    for rep in $(seq "$reps"); do
      for target in chatoxide-sqlite chatoxide-postgres; do
        for broker in off "nats ${NATS_URL:-nats://127.0.0.1:4222}" "amqp ${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"; do
          read -r name address <<<"$broker"
          psql "$pg/postgres" -qc CHECKPOINT >/dev/null
          OUTBOX_URL=${address:-} start "$target"
          stopfile="$server_dir/load-done"
          [ "$name" != off ] && node bench/outbox-lag.js "$url" "$stopfile" "$target outbox-$name lag" >"$server_dir/lag.json" &
          sampler=$!
          load durable --url "$url" --connections 50 --rooms 50 --window 8 --seconds "$seconds" --prefix "r$rep" \
            --label "$target outbox-$name"
          touch "$stopfile"
          if [ "$name" != off ]; then wait "$sampler"; tee -a "$results" <"$server_dir/lag.json"; fi
          stop_server
        done
      done
      timed node-postgres durable --url "$url" --connections 50 --rooms 50 --window 8 --seconds "$seconds" \
        --prefix "r$rep" --label "node-postgres outbox-off"
    done
    ;;
  capacity)
    # Two holders of 9,500 connections each (a process may open 20,000 files), then the
    # round trip beside them; the same round trip beside no held connection for comparison.
    for rep in $(seq "$reps"); do
      for target in chatoxide-sqlite node-postgres; do
        for held in 0 "${HELD:-19000}"; do
          start "$target"
          holders=
          if [ "$held" -gt 0 ]; then
            for h in 1 2; do
              taskset -c 1 "$bin/chatoxide-load" idle --url "$url" --pid "$server_pids" --connections $((held / 2)) \
                --concurrency 500 --settle 1 --hold --prefix "r$rep-h$h" --label "$target held-$h" >"$server_dir/holder$h.json" &
              holders="$holders $!"
            done
            for h in 1 2; do
              until [ -s "$server_dir/holder$h.json" ]; do sleep 0.5; done
              cat "$server_dir/holder$h.json" | tee -a "$results"
            done
          fi
          load durable --url "$url" --connections 50 --rooms 10 --rate "${RATE:-5000}" --command typing \
            --seconds "$seconds" --prefix "r$rep" --label "$target beside-$held"
          for pid in $holders; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
          stop_server
        done
      done
    done
    ;;
  cluster)
    for rep in $(seq "$reps"); do
      for nodes in 1 3; do
        # shellcheck disable=SC2046 # one word per node
        start_nodes $(printf 'chatoxide %.0s' $(seq "$nodes"))
        load fanout --urls "$urls" --pids "${server_pids// /,}" --receivers "${RECEIVERS:-1000}" --senders 3 \
          --rates "${RATES:-20,50,100,200,400}" --seconds "$seconds" --prefix "r$rep" --label "chatoxide ${nodes}-node"
        stop_server
      done
    done
    ;;
  mixed)
    # Each pair on its own fresh database and Redis key; the senders send the chat's `message`
    # (stored, then broadcast to the room's others), as in the fanout scenario, one on each node.
    for rep in $(seq "$reps"); do
      for pair in "node-pair node node" "chatoxide-pair chatoxide-node chatoxide-node" \
        "chatoxide-native-pair chatoxide chatoxide" "mixed-pair node chatoxide-node"; do
        read -r name kinds <<<"$pair"
        # shellcheck disable=SC2086 # $kinds is a list of node kinds
        start_nodes $kinds
        load fanout --urls "$urls" --pids "${server_pids// /,}" --receivers "${RECEIVERS:-1000}" --senders 2 \
          --rates "${RATES:-10,20,50,100,200}" --seconds "$seconds" --prefix "r$rep" --label "$name mixed-${RECEIVERS:-1000}"
        stop_server
      done
    done
    ;;
  joinstorm)
    for rep in $(seq "$reps"); do
      for target in ${TARGETS:-chatoxide-sqlite chatoxide-postgres node-memory node-postgres}; do
        JOIN_STORE=1 JOIN_EVENTS=1 start "$target"
        load joinstorm --url "$url" --pid "$server_pids" --sockets "${SOCKETS:-5000}" --prefix "r$rep" --label "$target joinstorm"
        stop_server
      done
      for target in chatoxide-sqlite chatoxide-postgres; do
        DEFAULTS=1 start "$target"
        load joinstorm --url "$url" --pid "$server_pids" --sockets "${SOCKETS:-5000}" --prefix "r$rep" --label "$target joinstorm-defaults"
        stop_server
      done
    done
    ;;
  reconnect)
    for rep in $(seq "$reps"); do
      for target in ${TARGETS:-chatoxide-sqlite chatoxide-postgres node-memory}; do
        export DEFAULTS=1
        start "$target"
        out="$server_dir/load.out"
        taskset -c 1 "$bin/chatoxide-load" reconnect --url "$url" --clients "${CLIENTS:-10000}" \
          --pid-file "$server_dir/pid" --prefix "r$rep" --label "$target reconnect" >"$out" &
        loader=$!
        until grep -q ready "$out" 2>/dev/null; do
          kill -0 "$loader" 2>/dev/null || { echo "the load tool stopped before the storm" >&2; exit 1; }
          sleep 0.2
        done
        kill -KILL "$server_pids"
        wait "$server_pids" 2>/dev/null || true
        launch "$target"
        wait "$loader"
        grep -v ready "$out" | tee -a "$results"
        unset DEFAULTS
        stop_server
      done
    done
    ;;
  history)
    for target in chatoxide-sqlite chatoxide-postgres; do
      start "$target"
      load history --url "$url" --database-url "$db" --label "$target"
      stop_server
    done
    ;;
  *)
    echo "usage: bench/run.sh idle|fanout|recovery|floor|roundtrip|storm|durable|outbox|capacity|cluster|mixed|joinstorm|reconnect [REPS] | history" >&2
    exit 2
    ;;
esac

node bench/summarize.js "$results"
