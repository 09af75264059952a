#!/usr/bin/env bash
# Resident memory of everything `dotnet run --project ClippyBot.AppHost` starts, and the time to all /health 200.
# `bench/rss.sh` (as root on a machine of the project's kind). CONFIGURATION=Release|Debug (default Release);
# LOAD_SECONDS (default 20) of wrk per service against its /health endpoint (the whole pipeline: TLS, headers, rate limits,
# database and cache checks) before the loaded figures. Prints one line per process: idle MB, loaded MB.
set -euo pipefail
cd "$(dirname "$0")/.."
configuration=${CONFIGURATION:-Release}
load_seconds=${LOAD_SECONDS:-20}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
dotnet build ClippyBot.AppHost -c "$configuration" -v q -nologo >/dev/null
log=$(mktemp /tmp/clippybot-rss-XXXXXX.log)
started=$(date +%s.%N)
dotnet run --project ClippyBot.AppHost -c "$configuration" --no-build --launch-profile http -- \
  --LocalInfrastructure:Persistent=false >"$log" 2>&1 &
runner=$!
descendants() { local p; for p in $(pgrep -P "$1" 2>/dev/null || true); do echo "$p"; descendants "$p"; done; }
# Everything the AppHost runs: its own tree, and the orchestrator (DCP), which re-parents itself to init and starts the rest.
# (The pid is matched whole: AppHost 123 must not also catch another AppHost's "--monitor 1234".)
everything() { local dcp; echo "$runner"; descendants "$runner"
  [ -n "${apphost:-}" ] || return 0
  for dcp in $(pgrep -f "dcp start-apiserver --monitor ${apphost}( |\$)" || true); do echo "$dcp"; descendants "$dcp"; done; }
stop() {
  set +e
  local all; all=$(everything)
  # SIGTERM: background jobs of a script ignore SIGINT. The AppHost stops its resources and removes the throwaway cluster.
  [ -n "${apphost:-}" ] && kill -TERM "$apphost" 2>/dev/null
  for _ in $(seq 1 150); do kill -0 "$runner" 2>/dev/null || break; sleep 0.2; done
  # Whatever is left of this run only (listed before the stop, checked again now).
  for pid in $all; do [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null; done
  rm -f "$log"
}
trap stop EXIT
for _ in $(seq 1 600); do apphost=$(pgrep -P "$runner" -f "ClippyBot.AppHost" | head -1) && [ -n "$apphost" ] && break; sleep 0.1; done
[ -n "${apphost:-}" ] || { cat "$log"; echo "the AppHost did not start" >&2; exit 1; }
# A process's short name: the service's assembly, or the executable.
name_of() {
  local cmd; cmd=$( { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null || true)
  case "$cmd" in
    "dotnet run --project"*) echo "dotnet run (wrapper)";; "dotnet tool run"*) echo "dotnet tool run (wrapper)";;
    *"dcp monitor-process"*) echo "dcp monitor-process";;
    *ClippyBot.Identity*Migrations=Only*|*ClippyBot.Api*Migrations=Only*|*ClippyBot.PluginHost*Migrations=Only*|*ClippyBot.Registry*Migrations=Only*) echo "migrator";;
    *ClippyBot.Identity*) echo identity;; *ClippyBot.Api*) echo api;; *ClippyBot.PluginHost*) echo pluginhost;; *ClippyBot.Registry*) echo registry;;
    *ClippyBot.AppHost*) echo apphost;; *Aspire.Dashboard*) echo dashboard;; *smtp4dev*) echo smtp4dev;;
    *garnet*) echo garnet;; *redis-server*) echo redis-server;; *dcp*) echo dcp;;
    *postgres*) echo postgres;; *) basename "$(awk '{print $1}' <<<"$cmd")";;
  esac
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Proportional set size: shared pages (the runtime, DCP's binary) divided among the processes that map them.
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
service_pid() { local p; for p in $(everything); do [ "$(name_of "$p")" = "$1" ] && { echo "$p"; return; }; done; }
service_url() { tr '\0' '\n' <"/proc/$1/environ" | sed -n 's/^ASPNETCORE_URLS=//p' | tr ';' '\n' | grep '^https' | head -1; }

# Healthy: every service's /health answers 200 (the services present the AppHost's development CA: -k).
deadline=$(( $(date +%s) + 300 ))
for service in identity api pluginhost registry; do
  until pid=$(service_pid "$service") && [ -n "$pid" ] && url=$(service_url "$pid") && [ -n "$url" ] \
        && curl -ks -o /dev/null -w '%{http_code}' "$url/health" | grep -q 200; do
    [ "$(date +%s)" -lt "$deadline" ] || { tail -30 "$log"; echo "not healthy within 300 s" >&2; exit 1; }
    sleep 0.2
  done
done
awk -v a="$started" -v b="$(date +%s.%N)" -v c="$configuration" 'BEGIN {printf "all /health 200 after %.1f s (dotnet run, built, %s)\n", b - a, c}'

snapshot() { local p; for p in $(everything); do echo "$(name_of "$p" | tr ' ' '_')|$(rss_kb "$p")|$(pss_kb "$p")"; done \
  | awk -F'|' '{kb[$1]+=$2; pss[$1]+=$3; n[$1]++} END {for (k in kb) printf "%s %d %d %d\n", k, kb[k], pss[k], n[k]}' | sort; }
sleep 30 # idle: start-up work (migrations, caches, the first background compilations) done
idle=$(snapshot)
for service in identity api pluginhost registry; do
  pid=$(service_pid "$service"); url=$(service_url "$pid")
  wrk -t2 -c16 -d"${load_seconds}s" "$url/health" >/dev/null 2>&1 || true
done
loaded=$(snapshot)
printf '%-28s %12s %12s %12s %12s\n' "process (RSS; PSS)" "idle RSS MB" "loaded RSS" "idle PSS" "loaded PSS"
join -a1 <(echo "$idle") <(echo "$loaded") | awk '{printf "%-28s %12.0f %12.0f %12.0f %12.0f%s\n", $1, $2/1024, $5/1024, $3/1024, $6/1024, ($4 > 1 ? "  (" $4 " processes)" : ""); i+=$2; l+=$5; ip+=$3; lp+=$6} END {printf "%-28s %12.0f %12.0f %12.0f %12.0f\n", "total", i/1024, l/1024, ip/1024, lp/1024}'
