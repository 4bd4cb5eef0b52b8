#!/usr/bin/env python3
"""Merges what check.sh's steps wrote (WORK/*.json, WORK/steps.tsv) into OUT/results.json and
OUT/summary.md. Runs after every step, so a run cut short still leaves both; anything missing is
reported as missing, never invented. Standard library only.

    summarize.py WORK OUT [--device D] [--size S]
"""
import argparse, glob, json, os


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return None if isinstance(e, FileNotFoundError) else {"error": f"{os.path.basename(path)}: {e}"}


def steps(work):
    rows = []
    try:
        with open(os.path.join(work, "steps.tsv")) as f:
            next(f)
            for line in f:
                name, rc, seconds = line.rstrip("\n").split("\t")
                rows.append({"step": name, "exit": rc, "seconds": int(seconds),
                             "status": "skipped" if rc == "skipped" else "ok" if rc == "0" else "timed out" if rc in ("124", "137") else "failed"})
    except OSError:
        pass
    return rows


def serve_summary(bench):
    if not bench or "error" in bench:
        return bench
    keys = ["model_id", "num_prompts", "max_concurrency", "completed", "failed", "duration", "request_throughput", "output_throughput",
            "total_token_throughput", "max_concurrent_requests"]
    out = {k: bench[k] for k in keys if k in bench}
    out.update({k: v for k, v in bench.items() if k.endswith("_ms")})
    return out


def f(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def g(x):
    """Three significant digits: TFLOP/s of a GPU (780) and of a CPU (0.02) alike."""
    return "-" if x is None else f"{x:.3g}"


def markdown(r):
    env = r.get("environment") or {}
    lines = ["# OServe on a GPU: check.sh results", "",
             f"device `{r['device']}`, size `{r['size']}`; GPU {env.get('gpu', env.get('nvidia_smi', 'n/a'))}; "
             f"torch {env.get('torch', 'n/a')} (CUDA {env.get('torch_cuda', 'n/a')})", "", "## Steps", "", "| step | status | exit | seconds |", "|---|---|---|---|"]
    lines += [f"| {s['step']} | {s['status']} | {s['exit']} | {s['seconds']} |" for s in r["steps"]]

    st = r.get("selftest")
    lines += ["", "## Self-test (CUDA test subset)", ""]
    if st and "checks" in st:
        lines += ["| check | status | detail |", "|---|---|---|"]
        lines += [f"| {c['name']} | {c['status']} | {c['detail'].replace('|', '/')} |" for c in st["checks"]]
    else:
        lines.append(f"missing ({st.get('error') if st else 'not run or no output'})")

    lines += ["", "## bench-model", ""]
    for card, b in sorted((r.get("bench_model") or {}).items()):
        if "error" in b:
            lines += [f"### {card}", "", b["error"], ""]
            continue
        lines += [f"### {card} on {b.get('device')}", "",
                  f"measured: {b.get('bandwidth_kind')} {f(b.get('bandwidth_gbps_measured'), 0)} GB/s, matmul {g(b.get('matmul_tflops_measured'))} TFLOP/s; "
                  f"one small kernel {f(b.get('launch_host_us'), 1)} us to launch, {f(b.get('launch_back_to_back_us'), 1)} us back to back "
                  "(TorchSharp 0.107 has no CUDA graphs)", "",
                  "| dtype | batch | step ms | tokens/s | bound tokens/s | vs batch 1 |", "|---|---|---|---|---|---|"]
        ones = {d["dtype"]: d["tokens_per_s"] for d in b.get("decode", []) if d["batch"] == 1}
        for d in b.get("decode", []):
            vs = d["tokens_per_s"] / ones[d["dtype"]] if d["dtype"] in ones else None
            lines.append(f"| {d['dtype']} | {d['batch']} | {f(d['step_ms'])} | {f(d['tokens_per_s'], 1)} | {f(d['bound_tokens_per_s'], 1)} | {f(vs, 1)}x |")
        for p in b.get("prefill", []):
            lines.append(f"\nprefill {p['tokens']} tokens ({p['dtype']}): {f(p['ms'])} ms, {g(p['tflops'])} TFLOP/s")
        for e in b.get("engine_loop", []):
            lines.append(f"\nengine loop batch {e['batch']} ({e['dtype']}): step {f(e['step_ms'])} ms, engine host time {f(e['host_ms'], 3)} ms "
                         f"(schedule {f(e['schedule_ms'], 3)}, prepare {f(e['prepare_ms'], 3)}, plan+upload {f(e['plan_ms'], 3)}, "
                         f"host sampling {f(e.get('sample_ms'), 3)}, update+outputs {f(e['update_ms'], 3)}), launch {f(e['launch_ms'])} ms, device wait {f(e['wait_ms'])} ms")
        if b.get("targets"):
            lines += ["", "| target | value | threshold | met | detail |", "|---|---|---|---|---|"]
            lines += [f"| {t['name']} | {f(t['value'])}{t['unit']} | {t['threshold']}{t['unit']} | {'yes' if t['met'] else 'NO'} | {t['detail']} |" for t in b["targets"]]
        lines.append("")

    sb = r.get("serve_bench")
    lines += ["## serve + oserve bench (64 concurrent streams)", ""]
    if sb and "error" not in sb:
        lines.append(f"{sb.get('completed')}/{sb.get('num_prompts')} completed, {sb.get('failed')} failed in {f(sb.get('duration'))} s; "
                     f"{f(sb.get('request_throughput'))} requests/s, {f(sb.get('output_throughput'), 1)} output tokens/s; "
                     f"TTFT mean {f(sb.get('mean_ttft_ms'), 1)} ms, p99 {f(sb.get('p99_ttft_ms'), 1)} ms; "
                     f"TPOT mean {f(sb.get('mean_tpot_ms'), 2)} ms, p99 {f(sb.get('p99_tpot_ms'), 2)} ms")
    else:
        lines.append(f"missing ({sb.get('error') if sb else 'not run or no result file'})")

    cal = r.get("calibration")
    lines += ["", "## profile vs ../shared/calibration/h200-shapes.json (ms per layer, one TP rank)", ""]
    if cal and "rows" in cal:
        for kind, m in (cal.get("median_ratio") or {}).items():
            lines.append(f"- {kind}: engine / calibration median {f(m['ratio'])} over {m['shapes']} shapes")
        timed = [x for x in cal["rows"] if "engine_ms_per_layer" in x]
        lines += ["", "| model | tp | shape | engine | calibration (eager) | graph | ratio |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {x['model']} | {x['tp']} | {x['shape']} | {f(x['engine_ms_per_layer'], 3)} | {f(x['calibration_ms_per_layer'], 3)} | "
                  f"{f(x.get('calibration_graph_ms_per_layer'), 3)} | {f(x.get('ratio'))} |" for x in timed]
        skipped = {}
        for x in cal["rows"]:
            if "skipped" in x:
                skipped[x["skipped"]] = skipped.get(x["skipped"], 0) + 1
        lines += [f"\nskipped {n} shape(s): {why}" for why, n in skipped.items()]
    else:
        lines.append(f"missing ({cal.get('error') if cal else 'not run or no output'})")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("out")
    ap.add_argument("--device", default="?")
    ap.add_argument("--size", default="?")
    a = ap.parse_args()
    bench = {}
    for path in sorted(glob.glob(os.path.join(a.work, "bench-model*.json"))):
        doc = load(path)
        bench[(doc or {}).get("model") or os.path.basename(path)] = doc
    r = {"device": a.device, "size": a.size, "environment": load(os.path.join(a.work, "environment.json")), "steps": steps(a.work),
         "selftest": load(os.path.join(a.work, "selftest.json")), "bench_model": bench,
         "serve_bench": serve_summary(load(os.path.join(a.work, "serve-bench.json"))), "calibration": load(os.path.join(a.work, "calibration.json"))}
    tmp = os.path.join(a.out, "results.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(r, fh, indent=1)
    os.replace(tmp, os.path.join(a.out, "results.json"))
    with open(os.path.join(a.out, "summary.md.tmp"), "w") as fh:
        fh.write(markdown(r))
    os.replace(os.path.join(a.out, "summary.md.tmp"), os.path.join(a.out, "summary.md"))


if __name__ == "__main__":
    main()
