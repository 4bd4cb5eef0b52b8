#!/usr/bin/env python3
"""Derives OServe's built-in GPU step-time profile from a gpu_shapes.py measurement.

Usage: python3 scripts/calibration/derive_gpu_profile.py ../shared/calibration/h200-shapes.json \
           > Planner.FSharp/CostModel/Profiles/h200-step-times.yaml

What it keeps, per model and TP degree: every measured point (prefill, decode replayed from a CUDA
graph, mixed, LM head) in milliseconds per layer, unchanged, plus each model's shape (from
gpu_shapes.py's MODELS table, copied below) so the planner matches models by shape, not by name,
and the GPU's measured references. Eager decode times are dropped (serving engines replay decode
from CUDA graphs); their ratio to the graph times is summarised in the header comment.
"""
import json, sys, statistics

# Same shapes as gpu_shapes.py's MODELS (and the project's Models/Cards).
SHAPES = {
    "Llama-2-70B": dict(architecture="llama", layers=80, hidden=8192, intermediate=28672, heads=64, kv_heads=8, vocab=32000),
    "LLaMA-30B":   dict(architecture="llama", layers=60, hidden=6656, intermediate=17920, heads=52, kv_heads=52, vocab=32000),
    "OPT-66B":     dict(architecture="opt",   layers=64, hidden=9216, intermediate=36864, heads=72, kv_heads=72, vocab=50272),
    "OPT-30B":     dict(architecture="opt",   layers=48, hidden=7168, intermediate=28672, heads=56, kv_heads=56, vocab=50272),
}
# Vendor figures of the GPUs gpu_shapes.py may have run on (dense bf16 TFLOP/s, HBM GB/s, memory GiB).
SPECS = {"NVIDIA H200": ("H200", 989, 4800, 141), "NVIDIA H100 80GB HBM3": ("H100-80GB", 989, 3350, 80)}


def f(x):
    return f"{x:.5g}"


def main(path):
    doc = json.load(open(path))
    name, tflops, hbm, mem = SPECS[doc["gpu"]]
    ref = doc["references"]
    eager_ratio = [d["ms_per_layer_eager"] / d["ms_per_layer_graph"]
                   for s in doc["shapes"] for d in s["decode"] if d.get("ms_per_layer_graph")]
    out = []
    w = out.append
    w("# OServe's built-in GPU step-time profile: per-rank layer times of tensor-parallel shards.")
    w(f"# Derived by scripts/calibration/derive_gpu_profile.py from ../shared/calibration/h200-shapes.json,")
    w(f"# measured with ../shared/calibration/gpu_shapes.py on one {doc['gpu']} ({doc['dtype']}, PyTorch {doc['torch']}).")
    w("# Method (gpu_shapes.py): for each model and TP degree, a stack of 4 distinct layers holding exactly one")
    w("# rank's slice of the weights (Megatron split; KV heads split, or replicated when TP exceeds them) timed")
    w("# with CUDA events, median of 6 runs after 2 warm-ups, divided by 4. All-reduces and PP sends are not in")
    w("# these times (one GPU): the cost model adds them from the cluster file's collective figures.")
    w("# Units: milliseconds per layer. prefill: [seqs, tokens, ms]; decode: [batch, context, ms] replayed from")
    w(f"# a CUDA graph (eager launch was x{statistics.median(eager_ratio):.2f} the graph time at the median, up to")
    w(f"# x{max(eager_ratio):.2f}); mixed: [decodes, context, prefill_tokens, ms]; lm_head: [rows, ms] (the rank's vocabulary slice).")
    w("source: \"../shared/calibration/h200-shapes.json (gpu_shapes.py on one NVIDIA H200)\"")
    w(f"gpu: {{name: {name}, tflops: {tflops}, hbm_gbps: {hbm}, memory_gib: {mem}, "
      f"measured_gemm_tflops: {f(ref['gemm_tflops'])}, measured_copy_gbps: {f(ref['copy_gbps'])}}}")
    w("models:")
    by_model = {}
    for s in doc["shapes"]:
        by_model.setdefault(s["model"], []).append(s)
    for model, rows in by_model.items():
        sh = SHAPES[model]
        w(f"  - name: {model}")
        w("    shape: {" + ", ".join(f"{k}: {v}" for k, v in sh.items()) + "}")
        w("    tp:")
        for s in sorted(rows, key=lambda r: r["tp"]):
            w(f"      - degree: {s['tp']}")
            w("        prefill: [" + ", ".join(f"[{p['seqs']}, {p['tokens']}, {f(p['ms_per_layer'])}]" for p in s["prefill"]) + "]")
            dec = [d for d in s["decode"] if d.get("ms_per_layer_graph")]
            w("        decode: [" + ", ".join(f"[{d['batch']}, {d['context']}, {f(d['ms_per_layer_graph'])}]" for d in dec) + "]")
            w("        mixed: [" + ", ".join(f"[{m['decodes']}, {m['context']}, {m['prefill_tokens']}, {f(m['ms_per_layer'])}]" for m in s.get("mixed", [])) + "]")
            w("        lm_head: [" + ", ".join(f"[{r}, {f(v)}]" for r, v in sorted(s["lm_head_ms"].items(), key=lambda kv: int(kv[0]))) + "]")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
