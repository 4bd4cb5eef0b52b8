using System.Diagnostics;
using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Models.Parallelism;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using TorchSharp;

namespace OServe.Engine.Control;

/// <summary>What calibration measured on this machine, and the planner inputs made from it.</summary>
public sealed record CpuCalibration
{
    public required double MatmulFlops { get; init; }
    public required double CopyBytesPerSec { get; init; }
    public required int ShortPrefillTokens { get; init; }
    public required double ShortPrefillSec { get; init; }
    public required int LongPrefillTokens { get; init; }
    public required double LongPrefillSec { get; init; }
    public required double DecodeStepSec { get; init; }
    public required int DecodeBatch { get; init; }
    public required double BatchedDecodeStepSec { get; init; }
    public required CostCoefficients Coefficients { get; init; }

    /// <summary>
    /// The all-reduce latency between this machine's logical devices, where one was fitted
    /// (seconds); a property of the devices, so it goes into the cluster (<see cref="CpuCostCalibration.Cluster(CpuCalibration, int, double)"/>),
    /// not the coefficients. Null: not measured; the cluster then says 0 (a CPU has no NCCL-like fixed cost).
    /// </summary>
    public double? AllReduceLatencySec { get; init; }

    /// <summary>
    /// True when <see cref="MatmulFlops"/> and <see cref="CopyBytesPerSec"/> are one core's (measured
    /// on a thread with one intra-op thread) and each logical device owns a core; false when they
    /// are the whole machine's, shared by the devices.
    /// </summary>
    public bool PerCore { get; init; }

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"matmul {MatmulFlops / 1e9:F1} GFLOP/s, copy {CopyBytesPerSec / 1e9:F1} GB/s{(PerCore ? " (one core)" : "")}; prefill {ShortPrefillTokens} tok {ShortPrefillSec * 1e3:F1} ms, " +
        $"{LongPrefillTokens} tok {LongPrefillSec * 1e3:F1} ms; decode step {DecodeStepSec * 1e3:F1} ms (batch 1), {BatchedDecodeStepSec * 1e3:F1} ms (batch {DecodeBatch}); " +
        $"fitted overhead {Coefficients.IterationOverheadSec * 1e3:F2} ms/step, prefill MFU {Coefficients.PrefillMfu:F3}, decode MFU {Coefficients.DecodeMfu:F3}, " +
        $"decode bandwidth efficiency {Coefficients.DecodeHbmEfficiency:F3}") +
        (AllReduceLatencySec is { } latency ? string.Create(CultureInfo.InvariantCulture, $", all-reduce latency {latency * 1e6:F0} us") : "");
}

/// <summary>
/// Makes the planner's cost model describe this CPU instead of a GPU. Logical CPU devices share
/// the machine fairly: each of N devices is given 1/N of the measured matmul FLOP/s and copy
/// bandwidth (the planner's "Tflops" and "HbmGbps"), and the intra-node link is the measured copy
/// bandwidth; or, for devices that own one core each (PoolDevice.OwnsCore), the figures are
/// measured on one thread with one intra-op thread and each device gets them whole
/// (<see cref="MeasureOneCore"/>, then <c>MeasureAsync(..., oneCore)</c> on an engine of one
/// such device). Then the real engine is timed (two prefill lengths, a decode step at batch 1 and at
/// a larger batch) and the coefficients are fitted so the planner's own formulas (ReplicaCost) give
/// back those times for a replica that owns the whole machine:
/// <list type="bullet">
/// <item>iterationOverheadSec = intercept of prefill time over prompt length (two lengths, both
/// at most 384 tokens, where attention's quadratic term is small);</item>
/// <item>prefillMfu = 2 * params * P / (flops * (t_prefill(P) - overhead)) for the longer P;</item>
/// <item>decodeHbmEfficiency = (weight bytes + KV bytes read) / (bandwidth * (t_decode(1) - overhead));</item>
/// <item>decodeMfu = 2 * params * B / (flops * (t_decode(B) - overhead));</item>
/// <item>linkEfficiency = 1 (the link figure is itself measured); workspace, KV minimum and
/// max_num_seqs come from the engine's settings. storageBytesPerSec stays the default: the
/// built-in model has no file to read, and only cold starts use it.</item>
/// </list>
/// </summary>
public static class CpuCostCalibration
{
    public const string DeviceTypeName = "cpu-logical";

    /// <param name="oneCore">this core's figures from <see cref="MeasureOneCore"/> when <paramref name="engine"/> runs on
    /// one core-owning device; null: the machine's figures are measured here (every core, the calling thread's torch threads).</param>
    /// <param name="longPromptTokens">the longer of the two prefill lengths timed (default 384): the prompt length the fit must be right at.</param>
    public static async Task<CpuCalibration> MeasureAsync(IInferenceEngine engine, ModelCard card, int maxNumSeqs, CancellationToken cancellationToken,
        (double Flops, double CopyBytesPerSec)? oneCore = null, int longPromptTokens = 384)
    {
        var flops = oneCore?.Flops ?? MatmulFlops();
        var copy = oneCore?.CopyBytesPerSec ?? CopyBytesPerSec();
        var vocab = engine.VocabSize ?? 256;
        int shortP = 32, longP = Math.Clamp(longPromptTokens, shortP + 1, engine.MaxModelLength - 2), batch = Math.Min(8, maxNumSeqs);
        await TimeRequestAsync(engine, vocab, 16, 4, cancellationToken); // warm-up
        var shortPrefill = Math.Min(await PrefillAsync(engine, vocab, shortP, cancellationToken), await PrefillAsync(engine, vocab, shortP, cancellationToken));
        var longPrefill = Math.Min(await PrefillAsync(engine, vocab, longP, cancellationToken), await PrefillAsync(engine, vocab, longP, cancellationToken));
        // Beyond a few hundred tokens attention's quadratic term bends the curve, and a line through
        // (short, long) would cut the time axis below zero: the intercept then comes from a shorter point.
        int midP = longP <= 384 ? longP : 192;
        var midPrefill = midP == longP ? longPrefill
            : Math.Min(await PrefillAsync(engine, vocab, midP, cancellationToken), await PrefillAsync(engine, vocab, midP, cancellationToken));
        var decode1 = await DecodeStepAsync(engine, vocab, 1, cancellationToken);
        var decodeB = await DecodeStepAsync(engine, vocab, batch, cancellationToken);

        var model = ContractMapping.model(card);
        double p = model.TotalParams;
        // Two points of prefill time over length: the intercept is the fixed cost of a step. Kept
        // below half the cheapest step so noise cannot leave a negative compute time.
        var slope = Math.Max(0, (midPrefill - shortPrefill) / (midP - shortP));
        var overhead = Math.Clamp(shortPrefill - slope * shortP, 0, 0.5 * Math.Min(decode1, shortPrefill));
        const int decodeContext = 32;
        var values = new Dictionary<string, string>
        {
            ["iterationOverheadSec"] = Num(overhead),
            // The planner prices prefill compute as dense + causal attention FLOPs (ReplicaCost.prefillSec).
            ["prefillMfu"] = Num((2 * p * longP + AttentionFlops(model, longP)) / (flops * (longPrefill - overhead))),
            ["decodeHbmEfficiency"] = Num((model.WeightBytes + decodeContext * (double)model.KvBytesPerToken) / (copy * (decode1 - overhead))),
            ["decodeMfu"] = Num(2 * p * batch / (flops * (decodeB - overhead))),
            ["linkEfficiency"] = "1",
            ["workspaceBytes"] = (64L << 20).ToString(CultureInfo.InvariantCulture),
            ["minKvTokens"] = card.MaxContext.ToString(CultureInfo.InvariantCulture),
            ["maxNumSeqs"] = maxNumSeqs.ToString(CultureInfo.InvariantCulture),
        };
        return new CpuCalibration
        {
            MatmulFlops = flops, CopyBytesPerSec = copy, PerCore = oneCore is not null,
            ShortPrefillTokens = shortP, ShortPrefillSec = shortPrefill, LongPrefillTokens = longP, LongPrefillSec = longPrefill,
            DecodeStepSec = decode1, DecodeBatch = batch, BatchedDecodeStepSec = decodeB, Coefficients = Read(values),
        };
    }

    /// <summary>Through the planner's own profile reader, so a calibration is exactly what a profile file would give.</summary>
    internal static CostCoefficients Read(IReadOnlyDictionary<string, string> values)
    {
        var read = CostCoefficientsModule.ofMap("CPU calibration", values);
        if (read.IsError) throw new InvalidOperationException(string.Join("; ", read.ErrorValue));
        return read.ResultValue;
    }

    /// <summary>
    /// Matmul FLOP/s and copy bandwidth of one core: measured on a fresh thread pinned to one
    /// intra-op thread (<see cref="IntraOpThreads"/>), as a core-owning logical device computes.
    /// </summary>
    public static (double Flops, double CopyBytesPerSec) MeasureOneCore()
    {
        (double, double) result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                IntraOpThreads.PinCurrentThread(1);
                result = (MatmulFlops(), CopyBytesPerSec());
            }
            catch (Exception e)
            {
                error = e;
            }
        }) { Name = "oserve-calibrate-core" };
        thread.Start();
        thread.Join();
        if (error is not null) throw new InvalidOperationException("measuring one core: " + error.Message, error);
        return result;
    }

    /// <summary>
    /// One node of <paramref name="numDevices"/> logical CPU devices: each 1/N of the measured
    /// machine, or, for a per-core calibration (<see cref="CpuCalibration.PerCore"/>), one core each.
    /// </summary>
    public static Cluster Cluster(CpuCalibration c, int numDevices, double memoryGibPerDevice) =>
        Cluster(numDevices, memoryGibPerDevice, c.MatmulFlops, c.CopyBytesPerSec, c.PerCore, c.AllReduceLatencySec ?? 0);

    /// <param name="flops">matmul FLOP/s measured on the machine, or on one core when <paramref name="perCore"/>.</param>
    /// <param name="copyBytesPerSec">copy bandwidth measured likewise; it is also every link's.</param>
    /// <param name="allReduceLatencySec">the devices' all-reduce latency (0: none; a CPU's shards hand off through memory).</param>
    public static Cluster Cluster(int numDevices, double memoryGibPerDevice, double flops, double copyBytesPerSec, bool perCore, double allReduceLatencySec = 0)
    {
        double share = perCore ? 1 : numDevices;
        return new()
        {
            Name = $"cpu-x{numDevices}",
            Description = perCore
                ? "logical CPU devices of one core each (figures measured by oserve's CPU calibration)"
                : "logical CPU devices sharing this machine (figures measured by oserve's CPU calibration)",
            GpuTypes = [new GpuType
            {
                Name = DeviceTypeName, MemoryGib = memoryGibPerDevice,
                Tflops = flops / share / 1e12, HbmGbps = copyBytesPerSec / share / 1e9,
            }],
            Nodes = [new Node { Name = "cpu", GpuType = DeviceTypeName, Gpus = numDevices, IntraLinkGbps = copyBytesPerSec / 1e9,
                AllreduceLatencyUs = allReduceLatencySec * 1e6, AllreduceBusGbps = copyBytesPerSec / 1e9 }],
            InterNodeLinkGbps = copyBytesPerSec / 1e9,
            InterNodeLatencyUs = 0,
        };
    }

    /// <summary>Writes the coefficients in the planner's profile format (CostCoefficients.load reads it back).</summary>
    public static void WriteProfile(string path, CpuCalibration c)
    {
        var k = c.Coefficients;
        var inv = CultureInfo.InvariantCulture;
        using var w = new StreamWriter(path);
        w.WriteLine($"source: oserve CPU calibration {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores; {c.Describe()}");
        w.WriteLine("coefficients:");
        foreach (var (name, value) in new (string, object)[]
        {
            ("iterationOverheadSec", k.IterationOverheadSec), ("prefillMfu", k.PrefillMfu), ("decodeMfu", k.DecodeMfu),
            ("decodeHbmEfficiency", k.DecodeHbmEfficiency), ("linkEfficiency", k.LinkEfficiency), ("workspaceBytes", k.WorkspaceBytes),
            ("minKvTokens", k.MinKvTokens), ("maxNumSeqs", k.MaxNumSeqs),
        })
            w.WriteLine(string.Format(inv, "  {0}: {1:R}", name, value));
    }

    /// <summary>ReplicaCost.prefillSec's attention term for one prompt of <paramref name="tokens"/> at the default factor.</summary>
    private static double AttentionFlops(OServe.Planner.CostModel.ModelSpec m, int tokens) =>
        CostCoefficientsModule.defaults.AttentionFlopsFactor * 2.0 * m.NumLayers * (double)tokens * tokens * m.NumHeads * m.HeadDim;

    private static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    private static double MatmulFlops()
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.randn(256, 1024);
        var b = torch.randn(1024, 1024);
        torch.mm(a, b);
        const int reps = 8;
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < reps; i++) torch.mm(a, b);
        return 2.0 * 256 * 1024 * 1024 * reps / sw.Elapsed.TotalSeconds;
    }

    private static double CopyBytesPerSec()
    {
        using var scope = torch.NewDisposeScope();
        var src = torch.ones(16L << 20); // 64 MiB of float32
        var dst = torch.empty_like(src);
        dst.copy_(src);
        const int reps = 4;
        var sw = Stopwatch.StartNew();
        for (var i = 0; i < reps; i++) dst.copy_(src);
        return 4.0 * src.numel() * reps / sw.Elapsed.TotalSeconds;
    }

    private static async Task<double> PrefillAsync(IInferenceEngine engine, int vocab, int promptTokens, CancellationToken ct) =>
        (await TimeRequestAsync(engine, vocab, promptTokens, 1, ct)).Total;

    /// <summary>Seconds per decode step with <paramref name="batch"/> requests admitted together (median over them).</summary>
    private static async Task<double> DecodeStepAsync(IInferenceEngine engine, int vocab, int batch, CancellationToken ct)
    {
        const int outputTokens = 25;
        var runs = await Task.WhenAll(Enumerable.Range(0, batch).Select(_ => TimeRequestAsync(engine, vocab, 16, outputTokens, ct)));
        var steps = runs.Select(r => (r.Last - r.First) / (outputTokens - 1)).Order().ToArray();
        return steps[steps.Length / 2];
    }

    private static async Task<(double Total, double First, double Last)> TimeRequestAsync(IInferenceEngine engine, int vocab, int promptTokens, int outputTokens, CancellationToken ct)
    {
        var rng = new Random(promptTokens * 7919 + outputTokens);
        var prompt = Enumerable.Range(0, promptTokens).Select(_ => rng.Next(1, vocab)).ToArray();
        var request = new GenerationRequest($"calibrate-{Guid.NewGuid():N}", prompt,
            new SamplingParams { MaxTokens = outputTokens, Temperature = 0, IgnoreEos = true });
        var sw = Stopwatch.StartNew();
        double first = double.NaN, last = 0;
        await foreach (var ev in engine.GenerateAsync(request, ct))
        {
            if (ev.TokenId < 0) continue;
            if (double.IsNaN(first)) first = sw.Elapsed.TotalSeconds;
            last = sw.Elapsed.TotalSeconds;
        }
        return (sw.Elapsed.TotalSeconds, first, last);
    }
}
