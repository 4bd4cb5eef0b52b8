#!/usr/bin/env bash
# The fault drill: a Redis membership store, three `oserve worker`s (cluster cpu-3node, the built-in
# model, one tp=1 replica each) and the front end, all on loopback; a bounded streaming load; one
# worker SIGKILLed mid-load, declared dead, re-planned around (the controller's CP-SAT plan for the
# devices left, once it has stayed dead the workers' --replan-grace, 10 s), then restarted (the full
# plan comes back). Ends with one line from the load's clients:
#   sent N, completed N, failed F, duplicated D, recovered in S s
# and exits 0 only when F = D = 0. S, as the clients saw it: a stall is a wait longer than the stall
# threshold (--stall-seconds, 2 s) for a stream's next token (its first one: from the request's send);
# S is from the kill (the time taken just after SIGKILL returned) to the end of the last stall that
# ends after it, i.e. until every stream the kill held up streams again (0: nothing stalled). A
# stall after the kill from another cause counts too, so S can overstate, never understate.
# Everything it starts is stopped on exit (trap), by process id.
#
# With --switch, nothing is killed: mid-load the drill PUTs scenarios/plans/builtin-3node-without-node1.yaml,
# a switch that retires node1's replica while it streams; its requests move to the other workers
# with their KV cache (fetched from node1 in chunks). S is then from the PUT. The front end's line
# gives how many requests moved, how many with KV, and the longest a moved request waited for its
# next token.
#
# With --loop S, nothing is killed either: the front end starts with builtin-3node-without-node1.yaml
# (no replica on node1), the workers run the forecasting controller loop with S-second windows
# (--controller-window S), and the drill waits, while the load runs, for the loop to apply a plan
# of its own (a switch or a re-route, planned by CP-SAT for the arrivals the front end reported);
# it prints the loop's last window and last applied plan. S is then from the load's start.
#
# Usage: scripts/fault-drill.sh [--requests N] [--concurrency C] [--max-tokens T] [--prompt-words W] [--kill NODE | --switch | --loop S] [--stall-seconds X]
# Env: CONFIGURATION (Release), OSERVE_DRILL_LOGS (a folder to keep the processes' logs in; the
# clients' token times are in its trace.jsonl), OSERVE_WORKER_ARGS (more `oserve worker` options for
# every worker, e.g. "--controller-window 15" to run the forecasting controller loop; its last
# window and last applied switch are printed at the end).
set -uo pipefail
cd "$(dirname "$0")/.."

requests=60; concurrency=12; max_tokens=; prompt_words=24; victim=node1; stall=2; mode=kill
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) sed -n '2,/^set /{/^set /d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    --stall-seconds) stall=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --prompt-words) prompt_words=$2; shift 2 ;;
    --kill) victim=$2; shift 2 ;;
    --switch) mode=switch; shift ;;
    --loop) mode=loop; loop_window=$2; shift 2 ;;
    *) echo "fault-drill: unknown option '$1' (see $0 --help)" >&2; exit 2 ;;
  esac
done
# A switch retires node1's replica a grace period (1 s) and a reconcile after the PUT: its requests
# must still be running then, so they are longer by default.
[[ -n $max_tokens ]] || { [[ $mode == switch ]] && max_tokens=192 || max_tokens=48; }
case "$victim" in node0|node1|node2) ;; *) echo "fault-drill: --kill must be node0, node1 or node2, got '$victim'" >&2; exit 2 ;; esac

config=${CONFIGURATION:-Release}
logs=${OSERVE_DRILL_LOGS:-$(mktemp -d /tmp/oserve-drill.XXXXXX)}
mkdir -p "$logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  sleep 1
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT INT TERM
say() { echo "fault-drill: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

free_port() {
  local port
  while true; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

say "building Engine.CSharp ($config)"
dotnet build Engine.CSharp -c "$config" -nologo -v quiet -clp:ErrorsOnly >"$logs/build.log" 2>&1 || { cat "$logs/build.log" >&2; exit 1; }
oserve=(dotnet "Engine.CSharp/bin/$config/net10.0/oserve.dll")

redis_server=$(scripts/install-redis.sh) || { say "redis-server is not available"; exit 1; }
redis_port=$(free_port)
"$redis_server" --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$logs/redis.log" 2>&1 &
pids+=($!)
membership="redis://127.0.0.1:$redis_port"

engine=(--max-model-len 512 --kv-cache-gib 0.1 --max-num-seqs 32 --threads 1)
read -r -a worker_extra <<<"${OSERVE_WORKER_ARGS:-}"
initial_plan=scenarios/plans/builtin-3node-tp1.yaml
if [[ $mode == loop ]]; then
  worker_extra+=(--controller-window "$loop_window")
  initial_plan=scenarios/plans/builtin-3node-without-node1.yaml
fi
declare -A silo gateway worker_pid
for node in node0 node1 node2; do silo[$node]=$(free_port); gateway[$node]=$(free_port); done
start_worker() {
  local node=$1
  "${oserve[@]}" worker --node "$node" --cluster cpu-3node --membership "$membership" --fast-failure-detection \
    --silo-port "${silo[$node]}" --gateway-port "${gateway[$node]}" "${engine[@]}" "${worker_extra[@]}" >>"$logs/$node.log" 2>&1 &
  worker_pid[$node]=$!
  pids+=($!)
}
for node in node0 node1 node2; do start_worker "$node"; done

http_port=$(free_port)
base="http://127.0.0.1:$http_port"
"${oserve[@]}" serve --plan "$initial_plan" --membership "$membership" --fast-failure-detection \
  --port "$http_port" "${engine[@]}" >"$logs/front-end.log" 2>&1 &
pids+=($!)

# The front end's /v1/cluster, compacted; empty when it did not answer (busy or down: no conclusion).
cluster() { curl -sf -m 5 "$base/v1/cluster" | tr -d ' \n'; }
live_nodes() { grep -o '"live_nodes":\[[^]]*\]' <<<"$1"; }
is_full() {   # all three workers live and the plan in force has r0 r1 r2, none missing
  local live; live=$(live_nodes "$1")
  [[ $live == *'"node0"'* && $live == *'"node1"'* && $live == *'"node2"'* && $1 == *'"missing_replicas":[]'* ]] \
    && grep -Eq '"replicas":\[\{"id":"r0".*\{"id":"r1".*\{"id":"r2"' <<<"$1"
}
is_dead() { [[ -n $1 && $(live_nodes "$1") != *"\"$victim\""* ]]; }   # membership no longer holds the victim live
wait_until() {  # wait_until WHAT CHECK LIMIT_S
  local what=$1 check=$2 limit=$3 start state; start=$(now)
  while true; do
    state=$(cluster)
    [[ -n $state ]] && $check "$state" && return 0
    if awk -v s="$(since "$start")" -v l="$limit" 'BEGIN { exit !(s > l) }'; then say "gave up waiting for $what after $limit s (logs: $logs)"; return 1; fi
    sleep 0.2
  done
}
started=$(now)
if [[ $mode == loop ]]; then
  is_up() { local live; live=$(live_nodes "$1"); [[ $live == *'"node0"'* && $live == *'"node1"'* && $live == *'"node2"'* && $1 == *'"missing_replicas":[]'* ]] \
    && grep -Eq '"replicas":\[\{"id":"r0".*\{"id":"r2"' <<<"$1"; }
  wait_until "the three workers and the plan r0 r2" is_up 300 || exit 1
  say "cluster up in $(since "$started") s: 3 workers, plan r0 r2 in force, the controller loop every $loop_window s (logs: $logs)"
else
  wait_until "the three workers' replicas" is_full 300 || exit 1
  say "cluster up in $(since "$started") s: 3 workers, plan r0 r1 r2 in force (logs: $logs)"
fi

"${oserve[@]}" drill-load --base-url "$base" --requests "$requests" --concurrency "$concurrency" --max-tokens "$max_tokens" --prompt-words "$prompt_words" \
  --progress-file "$logs/progress" --kill-marker "$logs/killed-at" --stall-seconds "$stall" --trace-file "$logs/trace.jsonl" >"$logs/load.out" 2>"$logs/load.err" &
load_pid=$!
pids+=($load_pid)

# Mid-load: once a quarter of the requests have finished (so many streams are in flight).
until [[ -f "$logs/progress" && $(cat "$logs/progress") -ge $((requests / 4)) ]] || ! kill -0 "$load_pid" 2>/dev/null; do sleep 0.1; done
# The front end's own figures: broken streams resumed and the longest wait for a next token after the
# break was seen; requests a switch moved, with KV, and the longest wait of a moved one.
front_end_figures() {
  say "front end: $(cluster | grep -oE '"(stream_breaks|requests_resumed|max_resume_seconds|requests_moved|requests_moved_with_kv|max_move_seconds)":[0-9.]+' | tr '\n' ' ')"
}
loop_figures() {  # the controller loop's last window and last applied plan
  local state; state=$(curl -sf -m 5 "$base/v1/cluster" | tr -d '\n')
  say "controller loop, last window: $(grep -oE '"loop": ?\{[^}]*\}' <<<"$state" || echo none)"
  say "controller loop, last applied: $(grep -oE '"loop_switch": ?\{[^}]*\}' <<<"$state" || echo none)"
}
plan_figures() { say "plan in force: $(cluster | grep -oE '"replicas":\[[^]]*\]' | head -1)"; }
worker_kv_figures() {
  say "workers: $(cluster | grep -oE '"node":"node[0-9]"|"(requests_moved_out|requests_moved_out_with_kv|requests_moved_in|requests_resumed_from_kv|kv_bytes_sent|kv_bytes_received)":[0-9]+' | tr '\n' ' ')"
}
finish_drill() {  # finish_drill [FIGURES...]: waits for the load, prints its line, the front end's and each FIGURES function's, and exits (1 when the drill or the load failed)
  wait "$load_pid"; rc=$?
  sed 's/^/fault-drill: /' "$logs/load.err" >&2
  front_end_figures
  for figures in "$@"; do "$figures"; done
  tail -n 1 "$logs/load.out"
  [[ $drill_ok -eq 1 ]] || { [[ $rc -eq 0 ]] && rc=1; }
  exit $rc
}
if [[ $mode == loop ]]; then
  echo "$EPOCHREALTIME" >"$logs/killed-at"
  loop_started=$(now)
  applied() { [[ $1 == *'"loop_switch":{'* ]]; }
  drill_ok=1
  if wait_until "the controller loop to apply a plan" applied $((loop_window * 12)); then
    say "the loop applied a plan $(since "$loop_started") s into the load"
  else
    drill_ok=0
  fi
  finish_drill loop_figures plan_figures
fi
if [[ $mode == switch ]]; then
  finished_at_switch=$(cat "$logs/progress")
  echo "$EPOCHREALTIME" >"$logs/killed-at"
  switched=$(now)
  code=$(curl -s -m 300 -o "$logs/switch.json" -w '%{http_code}' -X PUT --data-binary @scenarios/plans/builtin-3node-without-node1.yaml "$base/v1/plan")
  say "PUT the plan without node1's replica after $finished_at_switch of $requests requests finished: HTTP $code in $(since "$switched") s"
  drill_ok=1
  [[ $code == 200 ]] || { cat "$logs/switch.json" >&2; drill_ok=0; }
  moved() { [[ $1 =~ \"requests_moved\":([0-9]+) && ${BASH_REMATCH[1]} -gt 0 ]]; }
  wait_until "node1's replica to retire and move its requests" moved 60 && say "node1's replica retired $(since "$switched") s after the PUT" || drill_ok=0
  finish_drill worker_kv_figures
fi
# The kill time is taken after SIGKILL returns, with no process started between (EPOCHREALTIME, not
# date): a time taken before, plus a fork or two on a loaded machine, let the victim's streams go on
# past the "kill" and hid their pause.
finished_at_kill=$(cat "$logs/progress")
kill -KILL "${worker_pid[$victim]}"
killed=$EPOCHREALTIME
echo "$killed" >"$logs/killed-at"
wait "${worker_pid[$victim]}" 2>/dev/null   # reap it quietly
say "SIGKILLed worker $victim (pid ${worker_pid[$victim]}) after $finished_at_kill of $requests requests finished"

drill_ok=1
wait_until "$victim to be declared dead" is_dead 120 && say "$victim declared dead by membership $(since "$killed") s after the kill; the plan in force is without it" || drill_ok=0

# The workers re-plan with CP-SAT on the devices left once the victim has stayed dead --replan-grace (10 s).
is_replanned() { [[ $1 == *'"replan":{'* ]]; }
if wait_until "the controller to re-plan without $victim" is_replanned 90; then
  state=$(curl -sf -m 5 "$base/v1/cluster" | tr -d '\n')   # spaces kept: the reason is prose
  say "re-planned $(since "$killed") s after the kill: $(grep -oE '"reason": ?"[^"]*"' <<<"$state"); $(grep -oE '"planner": ?"[^"]*"' <<<"$state")"
else
  say "no re-plan without $victim (the plan restricted to the replicas left stays in force); last event: $(cluster | grep -oE '"last_event":"[^"]*"')"
fi

restarted=$(now)
start_worker "$victim"
wait_until "$victim to rejoin" is_full 300 && say "$victim rejoined: full plan in force again $(since "$restarted") s after its restart ($(since "$killed") s after the kill)" || drill_ok=0

if [[ -n ${OSERVE_WORKER_ARGS:-} ]]; then finish_drill loop_figures; else finish_drill; fi
