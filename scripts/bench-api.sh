#!/usr/bin/env bash
# The API under load, on 127.0.0.1 only, in a temp dir removed on exit
# (docs/performance.md, "The API under load"): its own redis-server,
# `exporter trigger` with the rate limit off, and one small export of the
# demo layer rendered by a real `exporter worker` (stopped once the job is
# Completed), so that the same POST /create is a cache hit. Then wrk loads
# GET /healthz, the cache-hit POST /create, POST /estimate and
# GET /jobs/{id} at each connection count for a fixed time, and the script
# prints requests/s, p50 and p99, each route's requests/s as a ratio to
# /healthz's at the same connection count, errors, non-2xx answers (counted
# by the trigger's exporter_http_requests_total) and the CPU the trigger and
# Redis used, as a Markdown table.
#
#   scripts/bench-api.sh          1.5 to 3.5 min with the build, as busy as the machine is
#
# BENCH_API_DURATION   time per route and connection count (5s)
# BENCH_API_CONNECTIONS  connection counts ("2 16 64")
# BENCH_API_TIMEOUT    bound on the whole run in seconds (600)
# BENCH_API_QUIET_WAIT  seconds each row waits at most for the machine to go
#                      idle first (10; the machine may be shared)
# BENCH_API_PROFILE=DIR  also writes 5 s CPU profiles of the trigger under
#                      the cache-hit POST /create and GET /jobs/{id} at the
#                      largest connection count (EXPORTER_HTTP_PPROF=true)
#                      into DIR: create.pprof, job.pprof
# BENCH_API_EXPORTER=PATH  loads that exporter binary instead of building
#                      bin/exporter (to compare two builds on one machine)
# BENCH_KEEP=1         keeps the temp dir (logs of redis, trigger, worker)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${BENCH_API_DURATION:-5s}
connections=${BENCH_API_CONNECTIONS:-2 16 64}
timeout=${BENCH_API_TIMEOUT:-600}

missing=()
for tool in redis-server redis-cli wrk curl jq python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-api: missing ${missing[*]}: run make tools" >&2
  exit 1
fi
exporter=${BENCH_API_EXPORTER:-}
if [ -z "$exporter" ]; then
  make -s -C "$root" build
  exporter=$root/bin/exporter
fi

tmp=$(mktemp -d -t bench-api.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-}" = 1 ] || [ "$rc" != 0 ]; then
    echo "bench-api: logs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The whole run is bounded: the watchdog ends it, and the trap cleans up.
(
  trap 'kill "$nap" 2>/dev/null; exit 0' TERM
  sleep "$timeout" &
  nap=$!
  wait "$nap" && echo "bench-api: no end after ${timeout}s, stopping" >&2 && kill -TERM $$
) &
pids+=($!)

fail() {
  echo "bench-api: $*" >&2
  exit 1
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# wait_for DESCRIPTION COMMAND...: up to 20 s for COMMAND to succeed.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 200); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "$what did not come up (logs in $tmp)"
}
# cpu_ticks PID: user plus system CPU time of PID, in clock ticks;
# child_ticks: that of this shell's waited-for children (wrk); busy_ticks:
# of the whole machine.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
child_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_for redis-server redis-cli -p "$redis_port" ping

export EXPORTER_REDIS_URL=redis://127.0.0.1:$redis_port/0
EXPORTER_AUTH_HS256_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export EXPORTER_AUTH_HS256_SECRET
export EXPORTER_DATA_DIR=$tmp/data EXPORTER_LOG_FORMAT=json
api=127.0.0.1:$(free_port)
metrics=127.0.0.1:$(free_port)
trigger_env=(EXPORTER_HTTP_ADDR="$api" EXPORTER_HTTP_METRICS_ADDR="$metrics" EXPORTER_HTTP_RATE_LIMIT=0)
if [ -n "${BENCH_API_PROFILE:-}" ]; then trigger_env+=(EXPORTER_HTTP_PPROF=true); fi
env "${trigger_env[@]}" "$exporter" trigger >"$tmp/trigger.log" 2>&1 &
trigger_pid=$!
pids+=("$trigger_pid")
wait_for "exporter trigger" curl -sf "http://$api/healthz"
token=$("$exporter" token -sub bench -ttl 1h 2>/dev/null)
auth="Authorization: Bearer $token"

# One small export (the specification's example: 18 tiles of the demo
# layer), rendered by a real worker; every POST /create of it then is a
# cache hit.
body='{"dbId":"ef03ca54-c68e-4ca8-8432-50ae5ad7a7f8","bbox":[34.811938017107494,31.95475033759175,34.82237261707599,31.96426962177354],"targetResolution":0.0000429153442382812,"callbackURLs":[],"crs":"EPSG:4326","priority":0}'
post() { curl -sf -H "$auth" -H 'Content-Type: application/json' -d "$body" "http://$api$1"; }
EXPORTER_HTTP_ADDR=127.0.0.1:$(free_port) "$exporter" worker >"$tmp/worker.log" 2>&1 &
worker_pid=$!
pids+=("$worker_pid")
id=$(post /create | jq -r .id)
[ -n "$id" ] && [ "$id" != null ] || fail "POST /create gave no job id"
status=
for _ in $(seq 600); do
  status=$(curl -sf -H "$auth" "http://$api/jobs/$id" | jq -r .status)
  case $status in Completed | Failed | Cancelled) break ;; esac
  sleep 0.1
done
[ "$status" = Completed ] || fail "the export ended $status, not Completed (logs in $tmp)"
kill -TERM "$worker_pid"
wait "$worker_pid" || true
[ "$(post /create | jq -r .status)" = Completed ] || fail "a second POST /create is not a cache hit"
post /estimate >/dev/null || fail "POST /estimate failed"

# Requests answered other than 2xx, by the trigger's own count.
non2xx() {
  curl -sf "http://$metrics/metrics" |
    awk '/^exporter_http_requests_total\{/ && !/code="2/ { n += $NF } END { printf "%d\n", n }'
}
created() {
  curl -sf "http://$metrics/metrics" |
    awk -v o="$1" '$0 ~ "^exporter_jobs_created_total\\{outcome=\"" o "\"" { n += $NF } END { printf "%d\n", n }'
}

# quiet: wait up to BENCH_API_QUIET_WAIT seconds (10) for the machine to
# go idle (under 0.2 of a core busy over half a second): the machine may be
# shared, and wrk, the trigger and Redis need both cores.
quiet() {
  local deadline=$((SECONDS + ${BENCH_API_QUIET_WAIT:-10})) b ticks
  ticks=$(($(getconf CLK_TCK) / 10)) # 0.2 cores for 0.5 s
  while [ "$SECONDS" -lt "$deadline" ]; do
    b=$(busy_ticks)
    sleep 0.5
    if [ $(($(busy_ticks) - b)) -le "$ticks" ]; then return; fi
  done
}

# point NAME METHOD PATH BODY CONNECTIONS: one wrk run, appended to results.
results=$tmp/results
point() {
  local name=$1 method=$2 path=$3 payload=$4 conns=$5 out t r w b e
  quiet
  e=$(non2xx)
  t=$(cpu_ticks "$trigger_pid")
  r=$(cpu_ticks "$redis_pid")
  w=$(child_ticks)
  b=$(busy_ticks)
  out=$(BENCH_METHOD=$method BENCH_BODY=$payload BENCH_TOKEN=$token \
    wrk -t "$((conns < 2 ? conns : 2))" -c "$conns" -d "$duration" --timeout 2s -s "$root/scripts/bench_api.lua" "http://$api$path") ||
    fail "wrk failed: $out"
  b=$(($(busy_ticks) - b))
  w=$(($(child_ticks) - w))
  t=$(($(cpu_ticks "$trigger_pid") - t))
  r=$(($(cpu_ticks "$redis_pid") - r))
  kill -0 "$trigger_pid" 2>/dev/null || fail "the trigger died (logs in $tmp)"
  echo "$name $conns $(grep '^result ' <<<"$out" | cut -d' ' -f2-) $(($(non2xx) - e)) $t $r $w $((b - t - r - w))" >>"$results"
}

routes=(
  "GET_/healthz GET /healthz"
  "POST_/create_(cache_hit) POST /create"
  "POST_/estimate POST /estimate"
  "GET_/jobs/{id} GET /jobs/$id"
)
run_routes() {
  local conns=$1 name method path payload
  for r in "${routes[@]}"; do
    read -r name method path <<<"$r"
    payload=
    if [ "$method" = POST ]; then payload=$body; fi
    point "$name" "$method" "$path" "$payload" "$conns"
  done
}
# Warm up (connections, Redis, the Go runtime); not counted.
measured=$duration
duration=1s
run_routes 16
duration=$measured
: >"$results"
for conns in $connections; do
  run_routes "$conns"
done
if [ -n "${BENCH_API_PROFILE:-}" ]; then
  # A CPU profile of the trigger under each route that reads Redis, at the
  # largest connection count.
  mkdir -p "$BENCH_API_PROFILE"
  largest=${connections##* }
  for r in "create POST /create" "job GET /jobs/$id"; do
    read -r name method path <<<"$r"
    payload=
    if [ "$method" = POST ]; then payload=$body; fi
    curl -sf -o "$BENCH_API_PROFILE/$name.pprof" "http://$metrics/debug/pprof/profile?seconds=5" &
    profiler=$!
    sleep 0.2
    BENCH_METHOD=$method BENCH_BODY=$payload BENCH_TOKEN=$token \
      wrk -t 2 -c "$largest" -d 6s --timeout 2s -s "$root/scripts/bench_api.lua" "http://$api$path" >/dev/null
    wait "$profiler" || fail "no CPU profile from the trigger"
  done
  echo "bench-api: CPU profiles of the trigger at $largest connections: $BENCH_API_PROFILE/create.pprof (cache-hit POST /create), $BENCH_API_PROFILE/job.pprof (GET /jobs/{id})"
fi
echo
echo "$("$exporter" version 2>/dev/null | head -1), $(redis-server --version | awk '{ print $1, $2, $3 }'), $(wrk --version 2>&1 | head -1 | awk '{ print $1, $2 }'), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
# Redis's own time per command, the scripts' included.
redis_stats=$(redis-cli -p "$redis_port" info commandstats |
  awk -F'[:,=]' '/^cmdstat_(evalsha|hgetall|sismember)/ { sub("cmdstat_", "", $1); printf "%s%s %d calls %.1f µs each", sep, $1, $3, $7; sep = ", " }')
echo "wrk for $duration per row on 127.0.0.1; CPU in cores used by the trigger, Redis, wrk and everything else on the machine; POST /create outcomes: $(created cache_hit) cache hits, $(created created) created; Redis command times: $redis_stats"
echo
awk -v hz="$(getconf CLK_TCK)" '
  { name[NR] = $1; conns[NR] = $2; req[NR] = $3; us[NR] = $4; p50[NR] = $5; p99[NR] = $6
    errs[NR] = $7 + $8 + $9 + $11; bad[NR] = $12; tcpu[NR] = $13; rcpu[NR] = $14; wcpu[NR] = $15; ocpu[NR] = $16
    rps[NR] = $4 > 0 ? $3 / ($4 / 1e6) : 0
    if ($1 == "GET_/healthz") health[$2] = rps[NR]
    if ($2 > max_conns) max_conns = $2 }
  END {
    print "| request | connections | requests/s | ÷ /healthz | p50 ms | p99 ms | errors | non-2xx | CPU trigger | Redis | wrk | others | µs CPU per request, trigger + Redis |"
    print "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    for (i = 1; i <= NR; i++) {
      n = name[i]; gsub("_", " ", n)
      ratio = health[conns[i]] > 0 ? sprintf("%.0f%%", 100 * rps[i] / health[conns[i]]) : "–"
      s = us[i] / 1e6
      per = req[i] > 0 ? 1e6 / hz / req[i] : 0
      printf "| %s | %d | %.0f | %s | %.2f | %.2f | %d | %d | %.2f | %.2f | %.2f | %.2f | %.0f + %.0f |\n", n, conns[i], rps[i], ratio,
        p50[i] / 1000, p99[i] / 1000, errs[i], bad[i], tcpu[i] / hz / s, rcpu[i] / hz / s, wcpu[i] / hz / s, (ocpu[i] > 0 ? ocpu[i] : 0) / hz / s,
        tcpu[i] * per, rcpu[i] * per
    }
    print ""
    print "Targets at " max_conns " connections: requests/s at least 25% of /healthz, p99 under 10 ms, no error or non-2xx."
    for (i = 1; i <= NR; i++) {
      if (conns[i] != max_conns || (name[i] != "POST_/create_(cache_hit)" && name[i] != "GET_/jobs/{id}")) continue
      n = name[i]; gsub("_", " ", n)
      ratio = health[conns[i]] > 0 ? 100 * rps[i] / health[conns[i]] : 0
      ok = ratio >= 25 && p99[i] < 10000 && errs[i] == 0 && bad[i] == 0
      printf "- %s: %.0f%% of /healthz, p99 %.2f ms, %d errors, %d non-2xx: %s\n", n, ratio, p99[i] / 1000, errs[i], bad[i], ok ? "met" : "missed"
    }
  }' "$results"
