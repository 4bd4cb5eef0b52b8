#!/usr/bin/env bash
# The engine on a GPU, unattended: runs from the bundle scripts/gpu/pack.sh builds, on a machine
# with PyTorch (its libtorch is what TorchSharp loads) and no .NET, and writes OUT_DIR/results.json,
# OUT_DIR/summary.md and OUT_DIR/check.log (three files; partial results are rewritten after every
# step, so a run cut short still leaves them). See scripts/gpu/README.md.
#
#   check.sh OUT_DIR [--device cuda|cpu|auto] [--size full|small] [--stories DIR] [--budget-s N]
#
#   --device    where the engine runs (default cuda)
#   --size      full: Llama-2-7B/Llama-3-8B shapes, H200 targets (the GPU run);
#               small: tiny cards and short runs (the CPU rehearsal of the same steps)
#   --stories   stories260K directory for the greedy-text check (default $OSERVE_STORIES260K,
#               else BUNDLE/stories260K; skipped when absent)
#   --budget-s  the whole run's deadline in seconds (default 470: under 8 minutes); every step is
#               hard-stopped with `timeout` at the smaller of its cap and what is left
# Environment: OSERVE_TORCH_LIB overrides the libtorch folder (default: python3's torch/lib).
set -uo pipefail
bundle=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: check.sh OUT_DIR [--device cuda|cpu|auto] [--size full|small] [--stories DIR] [--budget-s N]}
shift
device=cuda size=full budget=470
stories=${OSERVE_STORIES260K:-$bundle/stories260K}
while (( $# )); do
  case $1 in
    --device) device=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --stories) stories=$2; shift 2 ;;
    --budget-s) budget=$2; shift 2 ;;
    *) echo "check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ $size == full || $size == small ]] || { echo "check.sh: --size must be full or small, got '$size'" >&2; exit 2; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/oserve-check.XXXXXX")
log="$out/check.log"
: > "$log"
start=$(date +%s)
deadline=$((start + budget))
say() { echo "[$(($(date +%s) - start))s] $*" | tee -a "$log"; }
summarize() { python3 "$bundle/summarize.py" "$work" "$out" --device "$device" --size "$size" >> "$log" 2>&1 || say "summary failed (see above)"; }
left() { echo $((deadline - $(date +%s) - 15)); }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$work/steps.tsv"; }

# step NAME CAP_SECONDS COMMAND...: runs COMMAND under timeout, keeps its output, records its exit code.
step() {
  local name=$1 cap=$2; shift 2
  local remaining; remaining=$(left)
  if (( remaining < 20 )); then say "SKIP $name: only ${remaining}s left"; record "$name" skipped 0; summarize; return; fi
  local t=$((cap < remaining ? cap : remaining)) s; s=$(date +%s)
  say "== $name (hard stop after ${t}s)"
  echo "\$ $*" >> "$log"
  timeout -k 10 "$t" "$@" > "$work/$name.out" 2>&1
  local rc=$?
  cat "$work/$name.out" >> "$log"
  record "$name" "$rc" $(($(date +%s) - s))
  say "   $name: exit $rc$( ((rc == 124 || rc == 137)) && echo ' (timed out)') after $(($(date +%s) - s))s"
  summarize
}

say "check.sh: bundle $bundle, device $device, size $size, budget ${budget}s, work $work"
printf 'name\trc\tseconds\n' > "$work/steps.tsv"

# .NET from the bundle; libtorch from PyTorch (or OSERVE_TORCH_LIB).
dn="$work/dotnet"
mkdir -p "$dn"
if ! tar -xJf "$bundle/dotnet.tar.xz" -C "$dn"; then say "cannot unpack $bundle/dotnet.tar.xz"; record setup 1 0; summarize; exit 1; fi
# The app travels compressed (pack.sh); an unpacked app/ beside the script is used as it is.
app="$bundle/app"
if [[ ! -d $app ]]; then
  app="$work/app"
  if ! tar -xJf "$bundle/app.tar.xz" -C "$work"; then say "cannot unpack $bundle/app.tar.xz"; record setup 1 0; summarize; exit 1; fi
fi
if [[ -n ${OSERVE_TORCH_LIB:-} ]]; then
  tl=$OSERVE_TORCH_LIB
else
  tl=$(timeout 120 python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>>"$log")
fi
if [[ -z $tl || ! -d $tl ]]; then say "no libtorch folder (no PyTorch for python3, and OSERVE_TORCH_LIB unset)"; record setup 1 0; summarize; exit 1; fi
timeout 90 python3 - "$work/environment.json" "$tl" <<'EOF' >> "$log" 2>&1
import json, platform, subprocess, sys
env = {"python": platform.python_version(), "torch_lib": sys.argv[2], "host": platform.node()}
try:
    import torch
    env.update(torch=torch.__version__, torch_cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
    if torch.cuda.is_available():
        env.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
except Exception as e:  # the CPU rehearsal may point OSERVE_TORCH_LIB at a libtorch without Python
    env["torch_import"] = str(e)[:200]
try:
    env["nvidia_smi"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
                                       capture_output=True, text=True, timeout=20).stdout.strip()
except Exception:
    pass
json.dump(env, open(sys.argv[1], "w"), indent=1)
print("environment:", json.dumps(env))
EOF
export DOTNET_ROOT=$dn DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 OMP_WAIT_POLICY=PASSIVE
export LD_LIBRARY_PATH="$tl:$app${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
oserve=("$dn/dotnet" "$app/oserve.dll")
record setup 0 $(($(date +%s) - start))
say "libtorch from $tl; .NET $("$dn/dotnet" --list-runtimes | tr '\n' ' ')"

cards=$bundle/inputs/cards
if [[ $size == full ]]; then
  bench_cards=Llama-2-7B,Llama-3-8B bench_args=(--batch 1,8,32,128,256 --prefill 2048 --engine-batch 64 --hbm-gbps 4800 --peak-tflops 780)
  serve_card=Llama-2-7B serve_args=(--max-model-len 1024 --kv-cache-gib 16) load_args=(--random-input-len 256 --random-output-len 128 --num-prompts 256)
  profile_args=(--budget-s 100)
else
  bench_cards=$cards/tiny-llama-2.yaml,$cards/tiny-llama-3.yaml bench_args=(--dtype float32 --batch 1,8,32 --steps 5 --prefill 128 --engine-batch 16)
  serve_card=$cards/tiny-llama-2.yaml serve_args=(--max-model-len 256 --kv-cache-gib 0.25 --dtype float32) load_args=(--random-input-len 64 --random-output-len 16 --num-prompts 128)
  profile_args=(--dtype float32 --calibration-models Llama-2-70B --calibration-tps 8 --calibration-layers 1 --max-step-tokens 16 --kv-budget-gib 1 --budget-s 110)
fi

# 1. Correctness: paged == contiguous, TP shards on one GPU == unsharded, stories260K text == CPU, sampling.
step selftest 100 "${oserve[@]}" selftest --device "$device" --stories260k "$stories" --json "$work/selftest.json"

# 2. Decode at batch 1..256 against the HBM bound, a 2048-token prefill against the matmul peak, the engine's host time at batch 64.
step bench-model 170 "${oserve[@]}" bench-model --device "$device" --model-card "$bench_cards" --random-weights "${bench_args[@]}" --json "$work/bench-model.json"

# 3. The server over HTTP with 64 concurrent streams: serve in the background (under its own
# timeout), oserve bench against it, then stop the server by its pid.
serve_bench() {
  local remaining; remaining=$(left)
  if (( remaining < 40 )); then say "SKIP serve-bench: only ${remaining}s left"; record serve-bench skipped 0; summarize; return; fi
  local t=$((remaining < 170 ? remaining : 170)) s port=18765 waited=0 rc=1 pid name
  s=$(date +%s)
  name=$(basename "$serve_card" .yaml)
  [[ $name == tiny-llama-2 ]] && name=Tiny-Llama-2
  say "== serve-bench (hard stop after ${t}s)"
  timeout -k 5 "$t" "${oserve[@]}" serve --device "$device" --model-card "$serve_card" --random-weights --port "$port" \
    --max-num-seqs 64 "${serve_args[@]}" > "$work/serve.out" 2>&1 &
  pid=$!
  while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || (( waited > t / 2 )); then waited=-1; break; fi
    sleep 1
    waited=$((waited + 1))
  done
  if (( waited >= 0 )); then
    echo "serve listening after ${waited}s" >> "$log"
    timeout -k 5 $((t - waited - 25)) "${oserve[@]}" bench --base-url "http://127.0.0.1:$port" --model "$name" --dataset-name random \
      "${load_args[@]}" --max-concurrency 64 --request-timeout 120 --save-result --result-dir "$work" --result-filename serve-bench.json \
      > "$work/serve-bench.out" 2>&1
    rc=$?
  else
    echo "serve did not start listening on 127.0.0.1:$port" > "$work/serve-bench.out"
  fi
  # SIGINT: the server's graceful shutdown (timeout passes the signal on); then TERM, then KILL by pid.
  kill -INT "$pid" 2>/dev/null
  for sig in TERM KILL; do
    for _ in 1 2 3 4 5 6 7 8; do kill -0 "$pid" 2>/dev/null || break 2; sleep 1; done
    if [[ $sig == KILL ]]; then for child in $(pgrep -P "$pid"); do kill -KILL "$child" 2>/dev/null; done; fi
    kill "-$sig" "$pid" 2>/dev/null
  done
  wait "$pid" 2>/dev/null
  { echo "--- serve"; cat "$work/serve.out"; echo "--- bench"; cat "$work/serve-bench.out"; } >> "$log"
  record serve-bench "$rc" $(($(date +%s) - s))
  say "   serve-bench: exit $rc after $(($(date +%s) - s))s"
  summarize
}
serve_bench

# 4. The engine's forward layer by layer against the H200 calibration (PyTorch eager on the same GPU).
if [[ -f $bundle/inputs/h200-shapes.json ]]; then
  step profile 150 "${oserve[@]}" profile --device "$device" --calibration "$bundle/inputs/h200-shapes.json" "${profile_args[@]}" --comparison-output "$work/calibration.json"
else
  say "SKIP profile: the bundle has no inputs/h200-shapes.json"; record profile skipped 0; summarize
fi

say "done in $(($(date +%s) - start))s; results in $out"
rm -rf "$dn"
