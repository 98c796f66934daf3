#!/usr/bin/env bash
# docker/smoke.sh: boots docker/compose.yml on this machine and checks it end to end.
#
#   sudo docker/smoke.sh        (as root: it may install and start Docker)
#
# 1. Docker: installed from Debian's packages (docker.io, docker-compose, debootstrap) if
#    missing, and its daemon started if it does not run (said, and stopped again at the end).
# 2. Stand-ins for every image the Dockerfile and the compose file name, built only where the
#    real image is not present locally (no registry is reachable here), tagged with the names
#    the files use so that the files themselves are unchanged: a debootstrapped Debian bookworm
#    (debian:bookworm-slim), the Rust builder from this machine's toolchain
#    (rust:1.95-slim-bookworm), and Redis 7.0, PostgreSQL 15, HAProxy 2.6 and Prometheus 2.42
#    from Debian's packages with small entrypoints that honour what the compose file passes
#    (redis:7-alpine, postgres:16-alpine, haproxy:3.0-alpine, prom/prometheus:v3.14.0). Same
#    wiring, Debian's versions. Grafana has no Debian package: it is left out, and said so,
#    unless its image is present.
# 3. The chatoxide image, with the project's Dockerfile.
# 4. The stack, with the project's compose file (project name chatoxide-smoke), ports on
#    127.0.0.1.
# 5. docker/smoke-check.mjs: clients through HAProxy and on each node, presence, long-polling,
#    Prometheus's scrape of both nodes, a node stopped with `docker stop`.
# Everything it started is stopped and removed at the end; the images it built stay cached.
# Prints one line per check and `N passed, M failed`; exits 0 only when every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
say() { printf '==> %s\n' "$*"; }
started=$(date +%s)

# Debian's docker CLI (20.10) builds with BuildKit by itself; a newer CLI elsewhere on the PATH
# may need the buildx plugin, which this machine does not have.
export PATH="/usr/sbin:/usr/bin:$PATH"
export DOCKER_BUILDKIT=1
project=chatoxide-smoke
stage=${SMOKE_STAGE:-/var/tmp/chatoxide-smoke}
dockerd_pid=
stack_up=

cleanup() {
  local rc=$?
  if [ -n "$stack_up" ]; then
    say "stopping the stack"
    compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  fi
  if [ -n "$dockerd_pid" ]; then
    say "stopping the Docker daemon this script started"
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  say "done in $(($(date +%s) - started)) s"
  exit "$rc"
}
trap cleanup EXIT

# --- 1. Docker -------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
  need+=(docker-compose)
fi
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  say "starting the Docker daemon (it is stopped again at the end)"
  dockerd >"${TMPDIR:-/tmp}/chatoxide-smoke-dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start" >&2; exit 1; }
fi

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$project" -f docker/compose.yml "$@"
  else
    docker-compose -p "$project" -f docker/compose.yml "$@"
  fi
}

# --- 2. Stand-in images ----------------------------------------------------------------------
have() { docker image inspect "$1" >/dev/null 2>&1; }
base=chatoxide-smoke/bookworm:minbase

# standin NAME DOCKERFILE-TEXT [CONTEXT]: builds NAME from the text, unless NAME exists.
standin() {
  local name=$1 text=$2 context=${3:-}
  if have "$name"; then return; fi
  say "building a stand-in for $name"
  local dir
  dir=$(mktemp -d)
  printf '%s\n' "$text" >"$dir/Dockerfile"
  if [ -n "$context" ]; then cp -a "$context"/. "$dir"/; fi
  docker build -q -t "$name" "$dir" >/dev/null
  rm -rf "$dir"
}

if ! have "$base"; then
  say "making a Debian bookworm base image (debootstrap --variant=minbase)"
  rm -rf "$stage/rootfs"
  mkdir -p "$stage"
  debootstrap --variant=minbase bookworm "$stage/rootfs" http://deb.debian.org/debian >/dev/null
  tar -C "$stage/rootfs" -c . | docker import - "$base" >/dev/null
  rm -rf "$stage/rootfs"
fi
have debian:bookworm-slim || docker tag "$base" debian:bookworm-slim

apt_install() { echo "RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $* && rm -rf /var/lib/apt/lists/*"; }

# The Rust builder: this machine's toolchain (the rust image's layout: cargo home
# /usr/local/cargo), trusting the certificate authorities this machine added to its own
# (/usr/local/share/ca-certificates: a registry reached through a TLS-inspecting egress proxy
# shows its certificates, which Debian's bundle alone refuses).
if ! have rust:1.95-slim-bookworm; then
  toolchain=$(rustc --print sysroot)
  mkdir -p "$stage/rust/cas"
  rm -rf "$stage/rust/toolchain"
  cp -a "$toolchain" "$stage/rust/toolchain"
  cp /usr/local/share/ca-certificates/*.crt "$stage/rust/cas/" 2>/dev/null || true
  standin rust:1.95-slim-bookworm "FROM $base
$(apt_install gcc libc6-dev ca-certificates)
COPY cas/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version" "$stage/rust"
  rm -rf "$stage/rust"
fi

# Redis: started with arguments and no configuration file, it refuses clients from other
# containers (protected mode): the official image's configuration lets them in.
standin redis:7-alpine "FROM $base
$(apt_install redis-server)
RUN printf '#!/bin/sh\nif [ \"\$1\" = redis-server ]; then shift; exec redis-server --protected-mode no \"\$@\"; fi\nexec \"\$@\"\n' >/usr/local/bin/entrypoint && chmod +x /usr/local/bin/entrypoint
ENTRYPOINT [\"/usr/local/bin/entrypoint\"]
CMD [\"redis-server\"]
EXPOSE 6379"

# PostgreSQL: the official image's POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB make the
# role and the database on the first start, in PGDATA (the volume); clients from other
# containers authenticate with the password.
mkdir -p "$stage/postgres"
cat >"$stage/postgres/entrypoint" <<'SH'
#!/bin/sh
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data}
bin=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_postgres() { runuser -u postgres -- "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  as_postgres "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  as_postgres "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  user=${POSTGRES_USER:-postgres}
  if [ "$user" != postgres ]; then
    as_postgres psql -v ON_ERROR_STOP=1 -q -c "CREATE ROLE \"$user\" LOGIN SUPERUSER PASSWORD '${POSTGRES_PASSWORD:-}'"
  else
    as_postgres psql -v ON_ERROR_STOP=1 -q -c "ALTER ROLE postgres PASSWORD '${POSTGRES_PASSWORD:-}'"
  fi
  db=${POSTGRES_DB:-$user}
  [ "$db" = postgres ] || as_postgres psql -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE \"$db\" OWNER \"$user\""
  as_postgres "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA"
SH
standin postgres:16-alpine "FROM $base
$(apt_install postgresql-15 postgresql-client-15)
COPY entrypoint /usr/local/bin/entrypoint
RUN chmod +x /usr/local/bin/entrypoint
ENTRYPOINT [\"/usr/local/bin/entrypoint\"]
EXPOSE 5432" "$stage/postgres"
rm -rf "$stage/postgres"

standin haproxy:3.0-alpine "FROM $base
$(apt_install haproxy)
RUN mkdir -p /usr/local/etc/haproxy
CMD [\"haproxy\", \"-W\", \"-db\", \"-f\", \"/usr/local/etc/haproxy/haproxy.cfg\"]"

standin prom/prometheus:v3.14.0 "FROM $base
$(apt_install prometheus)
RUN mkdir -p /prometheus
ENTRYPOINT [\"/usr/bin/prometheus\"]
CMD [\"--config.file=/etc/prometheus/prometheus.yml\", \"--storage.tsdb.path=/prometheus\"]
EXPOSE 9090"

services=(redis postgres chat1 chat2 lb prometheus)
if have grafana/grafana:12.4.3; then
  services+=(grafana)
else
  say "no grafana/grafana:12.4.3 image here (and no Debian package to stand in for it): Grafana is left out"
fi

# --- 3. The chatoxide image ------------------------------------------------------------------
say "building the chatoxide image with docker/Dockerfile"
docker build -q -f docker/Dockerfile -t chatoxide:local . >/dev/null

# --- 4. The stack ----------------------------------------------------------------------------
say "starting ${services[*]}"
stack_up=1
compose up -d --no-build "${services[@]}" >/dev/null 2>&1 || compose up -d --no-build "${services[@]}"
for _ in $(seq 90); do
  curl -fsS --max-time 2 http://127.0.0.1:3000/healthz >/dev/null 2>&1 \
    && curl -fsS --max-time 2 http://127.0.0.1:3001/healthz >/dev/null 2>&1 \
    && curl -fsS --max-time 2 http://127.0.0.1:3002/healthz >/dev/null 2>&1 && break
  sleep 1
done

# --- 5. The checks ---------------------------------------------------------------------------
[ -d js-client-tests/node_modules/socket.io-client ] \
  || (cd js-client-tests && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
set +e
node docker/smoke-check.mjs "docker stop ${project}_chat2_1 || docker stop ${project}-chat2-1"
checks=$?
set -e
if [ "$checks" -ne 0 ]; then
  say "the stack's logs (last 30 lines a service)"
  compose logs --tail 30 2>&1 | tail -200
fi
exit "$checks"
