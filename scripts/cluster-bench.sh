#!/usr/bin/env bash
# Figures for Engine.Runtime/Distributed/README.md, on loopback with the built-in model:
#  1. output tokens/s of the cluster front end over three workers (plan builtin-3node-tp1) and over
#     one (the same cluster switched to r0 alone), same load (`oserve bench`, concurrency 12);
#  2. inter-token latency at concurrency 1 of one replica on a worker behind the front end vs the
#     same replica in one process (`oserve serve`, no Orleans hop);
#  3. the same at concurrency 1 for a tp1 x pp2 replica whose stages are on node0 and node1 (each
#     step's activations go to node1 and its logits come back).
# Every process shares this machine's cores: the figures measure the software path, not scaling.
# Stops everything it started (trap). Env: CONFIGURATION (Release), OSERVE_BENCH_LOGS.
set -uo pipefail
cd "$(dirname "$0")/.."
config=${CONFIGURATION:-Release}
logs=${OSERVE_BENCH_LOGS:-$(mktemp -d /tmp/oserve-cluster-bench.XXXXXX)}
mkdir -p "$logs"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; sleep 1; for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT INT TERM
say() { echo "cluster-bench: $*" >&2; }
free_port() { local p; while true; do p=$((20000 + RANDOM % 40000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }

dotnet build Engine.CSharp -c "$config" -nologo -v quiet -clp:ErrorsOnly >"$logs/build.log" 2>&1 || { cat "$logs/build.log" >&2; exit 1; }
oserve=(dotnet "Engine.CSharp/bin/$config/net10.0/oserve.dll")
redis_server=$(scripts/install-redis.sh) || exit 1
redis_port=$(free_port)
"$redis_server" --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >"$logs/redis.log" 2>&1 & pids+=($!)
membership="redis://127.0.0.1:$redis_port"
engine=(--max-model-len 512 --kv-cache-gib 0.1 --max-num-seqs 32 --threads 1)
for node in node0 node1 node2; do
  "${oserve[@]}" worker --node "$node" --cluster cpu-3node --membership "$membership" --fast-failure-detection \
    --silo-port "$(free_port)" --gateway-port "$(free_port)" "${engine[@]}" >"$logs/$node.log" 2>&1 & pids+=($!)
done
port=$(free_port); base="http://127.0.0.1:$port"
"${oserve[@]}" serve --plan scenarios/plans/builtin-3node-tp1.yaml --membership "$membership" --fast-failure-detection \
  --port "$port" "${engine[@]}" >"$logs/front-end.log" 2>&1 & pids+=($!)

replicas_in_force() {  # waits until /v1/cluster lists exactly these replica ids, none missing
  local want=$1 got
  for _ in $(seq 1500); do
    got=$(curl -sf -m 5 "$base/v1/cluster" | tr -d ' \n' | grep -o '"replicas":\[[^]]*\]' | grep -o '"id":"[^"]*"' | tr -d '\n')
    [[ $got == "$want" ]] && return 0
    sleep 0.2
  done
  say "gave up waiting for replicas $want (logs: $logs)"; return 1
}
bench() {  # bench NAME URL CONCURRENCY PROMPTS
  "${oserve[@]}" bench --base-url "$2" --model oserve-builtin-random --tokenizer gpt2 --seed 1 \
    --num-prompts "$4" --random-input-len 32 --random-output-len 32 --max-concurrency "$3" >"$logs/bench-$1.txt" 2>&1
}
figure() { grep -E "^$2" "$logs/bench-$1.txt" | awk '{print $NF}'; }

switch_to() {  # switch_to VERSION ID "DEVICES, tp..., pp...": PUT a plan of that one replica, every type routed to it
  curl -sf -X PUT --data-binary @- "$base/v1/plan" >"$logs/switch-$2.json" <<PLAN || { say "switch to $2 failed"; return 1; }
version: $1
model: oserve-builtin-random
cluster: cpu-3node
planner: manual
request_types:
  - {name: chat, input_tokens: 32, output_tokens: 64, rate_rps: 2.0}
  - {name: long-prompt, input_tokens: 400, output_tokens: 16, rate_rps: 0.5}
replicas:
  - {id: $2, gpu_type: cpu-logical, devices: $3, max_num_seqs: 32, max_num_batched_tokens: 1024}
routing:
  - type: chat
    weights: {$2: 1.0}
  - type: long-prompt
    weights: {$2: 1.0}
PLAN
}
replicas_in_force '"id":"r0""id":"r1""id":"r2"' || exit 1
say "three workers up; benchmarking (logs: $logs)"
bench three "$base" 12 48
switch_to 2 r0 "[node0/0], tp: 1" || exit 1
replicas_in_force '"id":"r0"' || exit 1
sleep 3   # the replaced replicas retire (no request is running: the bench finished) and unload
bench one "$base" 12 48
bench remote-c1 "$base" 1 8

switch_to 3 split "[node0/0, node1/0], tp: 1, pp: 2" || exit 1
replicas_in_force '"id":"split"' || exit 1
sleep 3
bench split-c1 "$base" 1 8

local_port=$(free_port)
"${oserve[@]}" serve --port "$local_port" "${engine[@]}" >"$logs/single-process.log" 2>&1 & pids+=($!)
for _ in $(seq 600); do curl -sf -m 2 "http://127.0.0.1:$local_port/health" >/dev/null && break; sleep 0.2; done
bench local-c1 "http://127.0.0.1:$local_port" 1 8

echo "| setup | output tok/s | mean TPOT ms | mean ITL ms | failed |"
echo "|---|---|---|---|---|"
for run in three one remote-c1 split-c1 local-c1; do
  echo "| $run | $(figure $run 'Output token throughput') | $(figure $run 'Mean TPOT') | $(figure $run 'Mean ITL') | $(figure $run 'Failed requests') |"
done
