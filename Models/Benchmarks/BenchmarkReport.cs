using System.Globalization;
using System.Text.Json;
using static TorchSharp.torch;

namespace OServe.Models.Benchmarks;

/// <summary>The decode benchmark's table, its ratios against the targets of issue 16, and the same as JSON.</summary>
public static class BenchmarkReport
{
    /// <summary>One target: what was measured, against what, and whether it holds.</summary>
    public sealed record Target(string Name, double Value, string Unit, double Threshold, bool AtLeast, string Detail)
    {
        public bool Met => AtLeast ? Value >= Threshold : Value <= Threshold;
    }

    public static void Print(DecodeBenchmark.Report r, TextWriter output)
    {
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine();
        output.WriteLine("dtype      batch   step ms   best ms    tokens/s   bound tok/s   of bound   vs batch 1");
        foreach (var x in r.Decode)
        {
            var single = r.Decode.FirstOrDefault(y => y.DType == x.DType && y.Batch == 1);
            string vsOne = single is null ? "-" : $"{x.TokensPerSecond / single.TokensPerSecond:F1}x";
            string ofBound = x.Batch == 1 ? $"{100 * x.TokensPerSecond / x.BoundTokensPerSecond:F0}%" : $"{100 * x.TokensPerSecond / x.BoundTokensPerSecond / x.Batch:F0}%/seq";
            output.WriteLine(string.Create(inv, $"{x.DType,-10} {x.Batch,5} {x.StepMilliseconds,9:F2} {x.BestStepMilliseconds,9:F2} {x.TokensPerSecond,11:F1} {x.BoundTokensPerSecond,13:F1} {ofBound,10} {vsOne,12}"));
        }
        foreach (var p in r.Prefill)
            output.WriteLine(string.Create(inv, $"prefill {p.DType} {p.Tokens} tokens: {p.Milliseconds:F2} ms, {p.FlopsPerSecond / 1e12:F1} TFLOP/s = {100 * p.FlopsPerSecond / r.PeakFlops:F0}% of {r.PeakSource}"));
        foreach (var (dtype, e) in r.Engine)
            output.WriteLine(string.Create(inv,
                $"engine loop {dtype} batch {e.Batch} (median of {e.Steps} steps): step {e.StepMs:F2} ms; host {e.HostMs:F3} ms (schedule {e.ScheduleMs:F3}, prepare {e.PrepareMs:F3}, " +
                $"plan+upload {e.PlanMs:F3}, sampling on the host {e.SampleMs:F3}, update+outputs {e.UpdateMs:F3}); kernel launch {e.LaunchMs:F2} ms, waiting for the device {e.WaitMs:F2} ms"));
        output.WriteLine();
        output.WriteLine(string.Create(inv, $"bound = {r.BoundSource} / weight bytes per step ({r.Config.ParametersReadPerStep / 1e6:F1}M parameters x dtype size)"));
        output.WriteLine("step ms is the median step (tokens/s uses it), best ms the fastest; a large gap means other work shared the machine");
        foreach (var e in r.Errors) output.WriteLine($"FAILED {e}");
        foreach (var dtype in r.Decode.Select(x => x.DType).Distinct())
        {
            output.WriteLine(IsGpu(r)
                ? $"targets ({dtype}; issue 16 states them for a Llama-2-7B shape in bf16 on an H200, bound at 4800 GB/s, peak 780 TFLOP/s):"
                : $"targets ({dtype}; the CPU's: batch 1 >= 60% of the bound, batch 32 aggregate >= 8x batch 1):");
            foreach (var t in Targets(r, dtype))
                output.WriteLine(string.Create(inv, $"  {(t.Met ? "MET   " : "MISSED")} {t.Name}: {t.Value:F2}{t.Unit} ({(t.AtLeast ? ">=" : "<=")} {t.Threshold:G4}{t.Unit}); {t.Detail}"));
        }
        var one = r.Decode.FirstOrDefault(x => x.Batch == 1);
        if (one is not null)
        {
            double weightsMs = 1000.0 * r.Config.ParametersReadPerStep * Kv.PagedKvCache.ElementSize(one.DType) / r.References.BandwidthBytesPerSecond;
            output.WriteLine(string.Create(inv,
                $"launch overhead: TorchSharp 0.107 exposes no CUDA graphs, so every kernel is launched from the host each step ({r.References.LaunchHostMicroseconds:F1} us " +
                $"to launch one, {r.References.LaunchDeviceMicroseconds:F1} us each back to back); batch-1 step {one.StepMilliseconds:F2} ms against {weightsMs:F2} ms to stream " +
                $"the weights at the measured {r.References.BandwidthKind} bandwidth: {Math.Max(0, one.StepMilliseconds - weightsMs):F2} ms is launches and small-kernel floors"));
        }
    }

    private static bool IsGpu(DecodeBenchmark.Report r) => r.Options.Device.type == TorchSharp.DeviceType.CUDA;

    /// <summary>
    /// On a GPU, issue 16's: batch 1 >= 70% of the bound, batch 128 >= 40x batch 1 (scaled when 128
    /// is not run), prefill >= 60% of the peak, engine host time <= 0.5 ms per step. On the CPU, the
    /// decode pair this benchmark has always printed: 60% and 8x at batch 32.
    /// </summary>
    public static IReadOnlyList<Target> Targets(DecodeBenchmark.Report r, ScalarType dtype)
    {
        var targets = new List<Target>();
        bool gpu = IsGpu(r);
        int reference = gpu ? 128 : 32;
        double factor = gpu ? 40 : 8;
        var one = r.Decode.FirstOrDefault(x => x.DType == dtype && x.Batch == 1);
        if (one is not null)
            targets.Add(new("decode batch 1, share of the bandwidth bound", 100 * one.TokensPerSecond / one.BoundTokensPerSecond, "%", gpu ? 70 : 60, true,
                $"{one.TokensPerSecond:F1} tokens/s against {one.BoundTokensPerSecond:F1} ({r.BoundSource})"));
        var big = r.Decode.Where(x => x.DType == dtype && x.Batch > 1).MaxBy(x => x.Batch == reference ? int.MaxValue : x.Batch);
        if (one is not null && big is not null)
            targets.Add(new($"batch {big.Batch} aggregate vs batch 1", big.TokensPerSecond / one.TokensPerSecond, "x",
                big.Batch == reference ? factor : factor * big.Batch / reference, true,
                $"{big.TokensPerSecond:F0} against {one.TokensPerSecond:F1} tokens/s" + (big.Batch == reference ? "" : $" (threshold scaled from {factor}x at {reference})")));
        foreach (var p in r.Prefill.Where(p => p.DType == dtype))
            targets.Add(new($"prefill {p.Tokens} tokens, share of the matmul peak", 100 * p.FlopsPerSecond / r.PeakFlops, "%", 60, true,
                $"{p.FlopsPerSecond / 1e12:F1} TFLOP/s against {r.PeakSource}"));
        foreach (var (_, e) in r.Engine.Where(e => e.DType == dtype))
            targets.Add(new($"engine host time per step at batch {e.Batch}", e.HostMs, " ms", 0.5, false, "scheduler, batch preparation, index upload, sampling bookkeeping, outputs"));
        return targets;
    }

    public static void WriteJson(DecodeBenchmark.Report r, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        var c = r.Config;
        json.WriteStartObject();
        json.WriteString("model", r.Options.ModelName);
        json.WriteString("device", DeviceSelection.Describe(r.Options.Device));
        json.WriteNumber("parameters", c.ParameterCount);
        json.WriteNumber("context_tokens", r.Options.ContextTokens);
        json.WriteNumber("bandwidth_gbps_measured", r.References.BandwidthBytesPerSecond / 1e9);
        json.WriteString("bandwidth_kind", r.References.BandwidthKind);
        json.WriteNumber("matmul_tflops_measured", r.References.MatmulFlops / 1e12);
        json.WriteNumber("launch_host_us", r.References.LaunchHostMicroseconds);
        json.WriteNumber("launch_back_to_back_us", r.References.LaunchDeviceMicroseconds);
        json.WriteString("bound_source", r.BoundSource);
        json.WriteString("peak_source", r.PeakSource);
        json.WriteStartArray("decode");
        foreach (var x in r.Decode)
        {
            json.WriteStartObject();
            json.WriteString("dtype", x.DType.ToString());
            json.WriteNumber("batch", x.Batch);
            json.WriteNumber("step_ms", x.StepMilliseconds);
            json.WriteNumber("best_step_ms", x.BestStepMilliseconds);
            json.WriteNumber("tokens_per_s", x.TokensPerSecond);
            json.WriteNumber("bound_tokens_per_s", x.BoundTokensPerSecond);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("prefill");
        foreach (var p in r.Prefill)
        {
            json.WriteStartObject();
            json.WriteString("dtype", p.DType.ToString());
            json.WriteNumber("tokens", p.Tokens);
            json.WriteNumber("ms", p.Milliseconds);
            json.WriteNumber("tflops", p.FlopsPerSecond / 1e12);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("engine_loop");
        foreach (var (dtype, e) in r.Engine)
        {
            json.WriteStartObject();
            json.WriteString("dtype", dtype.ToString());
            json.WriteNumber("batch", e.Batch);
            json.WriteNumber("step_ms", e.StepMs);
            json.WriteNumber("host_ms", e.HostMs);
            json.WriteNumber("schedule_ms", e.ScheduleMs);
            json.WriteNumber("prepare_ms", e.PrepareMs);
            json.WriteNumber("plan_ms", e.PlanMs);
            json.WriteNumber("sample_ms", e.SampleMs);
            json.WriteNumber("update_ms", e.UpdateMs);
            json.WriteNumber("launch_ms", e.LaunchMs);
            json.WriteNumber("wait_ms", e.WaitMs);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("errors");
        foreach (var e in r.Errors) json.WriteStringValue(e);
        json.WriteEndArray();
        json.WriteStartArray("targets");
        foreach (var dtype in r.Decode.Select(x => x.DType).Distinct())
            foreach (var t in Targets(r, dtype))
            {
                json.WriteStartObject();
                json.WriteString("dtype", dtype.ToString());
                json.WriteString("name", t.Name);
                json.WriteNumber("value", t.Value);
                json.WriteString("unit", t.Unit.Trim());
                json.WriteNumber("threshold", t.Threshold);
                json.WriteBoolean("met", t.Met);
                json.WriteString("detail", t.Detail);
                json.WriteEndObject();
            }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
