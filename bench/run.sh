#!/usr/bin/env bash
# Token-issuance benchmark, one command: `bench/run.sh` (as root on a machine of the project's kind).
# Client-credentials tokens from ClippyBot.Identity (Release, real PostgreSQL + Garnet) and from the reference peer
# node oidc-provider 9.13.3, back to back, same load: wrk, 16 connections, 2 threads, same signing algorithm.
# Prints requests/s, p50/p99 latency and errors for each.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration=${DURATION:-15s}
connections=${CONNECTIONS:-16}
work=$(mktemp -d /tmp/clippybot-bench-XXXXXX)
pids=()
cleanup() {
  [ "${ok:-0}" = 1 ] || tail -20 "$work"/identity.log 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -n "${pgbin:-}" ] && setpriv --reuid=postgres --regid=postgres --init-groups "$pgbin/pg_ctl" stop -D "$work/pg/data" -m fast >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
(cd bench/peer && npm install --no-package-lock --no-audit --no-fund --silent)
dotnet build ClippyBot.Identity -c Release -v q -nologo >/dev/null
dotnet tool restore >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 240); do curl -fs -o /dev/null "$1" && return 0; sleep 0.25; done; echo "timed out waiting for $1" >&2; return 1; }

# PostgreSQL (throwaway cluster) and Garnet.
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
pgport=$(free_port); redisport=$(free_port); idport=$(free_port); peerport=$(free_port)
pgpass=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
mkdir -p "$work/pg" && echo "$pgpass" > "$work/pg/pw" && chown -R postgres:postgres "$work/pg" && chmod 755 "$work"
setpriv --reuid=postgres --regid=postgres --init-groups "$pgbin/initdb" -D "$work/pg/data" -U postgres --pwfile "$work/pg/pw" --auth-host=scram-sha-256 --no-sync >/dev/null
setpriv --reuid=postgres --regid=postgres --init-groups "$pgbin/postgres" -D "$work/pg/data" -p "$pgport" -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200 ${PGARGS:-} >"$work/pg.log" 2>&1 &
pids+=($!)
dotnet tool run garnet-server -- --bind 127.0.0.1 --port "$redisport" -q --memory 256m --index 32m >"$work/garnet.log" 2>&1 &
pids+=($!)

secret=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
export ConnectionStrings__identitydb="Host=127.0.0.1;Port=$pgport;Username=postgres;Password=$pgpass;Database=identitydb"
export ConnectionStrings__cache="127.0.0.1:$redisport"
export Oidc__KeyEncryptionKey=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
export Oidc__ClientSecretHashKey=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
export Oidc__AllowHttp=true
export Oidc__Clients__0__ClientId=clippybot-api-service Oidc__Clients__0__ClientSecret=$secret
export Oidc__Clients__0__GrantTypes__0=client_credentials Oidc__Clients__0__Scopes__0=pluginhost
export Logging__LogLevel__Default=Warning ASPNETCORE_ENVIRONMENT=Production
for _ in $(seq 1 120); do PGPASSWORD=$pgpass psql -h 127.0.0.1 -p "$pgport" -U postgres -c 'CREATE DATABASE identitydb' >/dev/null 2>&1 && break; sleep 0.25; done
dotnet ClippyBot.Identity/bin/Release/net10.0/ClippyBot.Identity.dll --urls "http://127.0.0.1:$idport" >"$work/identity.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$idport/health"

body="grant_type=client_credentials&client_id=clippybot-api-service&client_secret=$secret&scope=pluginhost"
run() { # name url
  BODY="$body" wrk -t2 -c"$connections" -d5s -s bench/token.lua "$2" >/dev/null # warm-up
  printf '%-34s %s\n' "$1" "$(BODY="$body" wrk -t2 -c"$connections" -d"$duration" -s bench/token.lua "$2" | grep RESULT | cut -d' ' -f2-)"
}

idpid=${pids[-1]}
if [ -n "${PROFILE:-}" ]; then # developer aid: a CPU sample of the Identity service during its run
  (sleep 6; "$PROFILE" collect -p "$idpid" --profile dotnet-sampled-thread-time --duration 00:00:06 -o "$work/identity.nettrace" >/dev/null 2>&1) &
fi
echo "client-credentials token issuance, wrk -t2 -c$connections -d$duration, $(nproc) cores"
run "clippybot identity (ES256)" "http://127.0.0.1:$idport/connect/token"
for alg in ES256 RS256; do
  CLIENT_SECRET=$secret PORT=$peerport ALG=$alg node bench/peer/server.mjs >"$work/peer-$alg.log" 2>&1 &
  peer=$!
  wait_http "http://127.0.0.1:$peerport/.well-known/openid-configuration"
  run "node oidc-provider 9.13.3 ($alg)" "http://127.0.0.1:$peerport/token"
  kill $peer; wait $peer 2>/dev/null || true
done
ok=1
