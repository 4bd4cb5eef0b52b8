using System.Diagnostics;
using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Parallelism;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Benchmarks;

/// <summary>
/// Decode throughput of a random Llama (a ~110M-parameter default, or a model card's shape on a
/// GPU) against the memory-bandwidth bound: at batch 1 a decode step must stream every weight
/// once, so tokens/s cannot exceed bandwidth / weight bytes per step; larger batches share that
/// stream, so their aggregate tokens/s should be many times batch 1's. Optionally also a long
/// prompt's prefill against the device's matmul peak, and the engine loop's own host time per step.
/// </summary>
public static class DecodeBenchmark
{
    /// <summary>Tokens/s from the median step; BestStepMilliseconds shows what an uncontended step achieves on a shared machine.</summary>
    public sealed record Result(ScalarType DType, int Batch, double TokensPerSecond, double StepMilliseconds, double BestStepMilliseconds, double BoundTokensPerSecond);

    /// <summary>One prompt of <paramref name="Tokens"/> tokens through the model; Flops counts the matmuls and causal attention.</summary>
    public sealed record PrefillResult(ScalarType DType, int Tokens, double Milliseconds, double Flops)
    {
        public double FlopsPerSecond => Flops / (Milliseconds / 1000);
    }

    /// <summary>Everything one run measured.</summary>
    /// <param name="Errors">cases that failed (a single-shot run on a borrowed GPU keeps the others rather than stopping).</param>
    public sealed record Report(DecodeBenchmarkOptions Options, LlamaConfig Config, DeviceReferences References, double BoundBandwidth, string BoundSource,
        double PeakFlops, string PeakSource, IReadOnlyList<Result> Decode, IReadOnlyList<PrefillResult> Prefill, IReadOnlyList<(ScalarType DType, HostOverhead Overhead)> Engine,
        IReadOnlyList<string> Errors);

    public static int Run(DecodeBenchmarkOptions options, TextWriter output)
    {
        var report = Measure(options, output);
        BenchmarkReport.Print(report, output);
        return 0;
    }

    /// <summary>
    /// Runs every case on the calling thread. On CPU that thread is pinned to
    /// <see cref="DecodeBenchmarkOptions.Threads"/> intra-op threads for the run and handed back as it
    /// came; the process default that other threads start from is left alone (a process-wide
    /// torch.set_num_threads here changed what every later thread of the caller ran with).
    /// </summary>
    public static Report Measure(DecodeBenchmarkOptions options, TextWriter output)
    {
        bool cuda = options.Device.type == DeviceType.CUDA;
        if (cuda) return MeasureOnThisThread(options, output);
        int pinnedBefore = IntraOpThreads.PinnedCount;
        IntraOpThreads.PinCurrentThread(options.Threads);
        try
        {
            return MeasureOnThisThread(options, output);
        }
        finally
        {
            if (pinnedBefore == 0) IntraOpThreads.UnpinCurrentThread();
            else IntraOpThreads.PinCurrentThread(pinnedBefore);
        }
    }

    private static Report MeasureOnThisThread(DecodeBenchmarkOptions options, TextWriter output)
    {
        bool cuda = options.Device.type == DeviceType.CUDA;
        var config = ConfigOf(options);
        output.WriteLine($"decode benchmark: {options.ModelName}, {config.ParameterCount / 1e6:F1}M parameters (dim {config.Dim}, {config.NumLayers} layers, " +
            $"hidden {config.HiddenDim}, {config.NumHeads} heads ({config.NumKvHeads} KV), vocab {config.VocabSize}), context {options.ContextTokens} tokens, " +
            $"{options.Steps} timed steps, on {DeviceSelection.Describe(options.Device)}" + (cuda ? "" : $", {options.Threads} threads") + $", TorchSharp {torch.__version__}");
        if (typeof(DecodeBenchmark).Assembly.GetCustomAttributes(typeof(DebuggableAttribute), false) is [DebuggableAttribute { IsJITOptimizerDisabled: true }])
            output.WriteLine("WARNING: OServe.Models is a Debug build, so its CPU kernels run unoptimised; build with -c Release for meaningful numbers");
        if (!cuda)
        {
            string waitPolicy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(unset)";
            output.WriteLine($"OMP_WAIT_POLICY={waitPolicy}" + (options.Threads > 1 && !waitPolicy.Equals("PASSIVE", StringComparison.OrdinalIgnoreCase)
                ? "; on a shared machine set OMP_WAIT_POLICY=PASSIVE before starting (spinning OpenMP threads stall when a core is busy)" : ""));
        }
        var refs = DeviceReferences.Measure(options.Device, options.DTypes[0], options.BandwidthBytes);
        output.WriteLine($"memory bandwidth: {refs.BandwidthKind} {refs.BandwidthBytesPerSecond / 1e9:F1} GB/s; matmul {refs.MatmulSize}^3: {refs.MatmulFlops / 1e12:G3} TFLOP/s; " +
            $"one small kernel: {refs.LaunchHostMicroseconds:F1} us to launch, {refs.LaunchDeviceMicroseconds:F1} us each back to back");
        double bound = options.NominalBandwidthGbps * 1e9 ?? refs.BandwidthBytesPerSecond;
        string boundSource = options.NominalBandwidthGbps is { } g ? $"nominal {g:F0} GB/s" : $"measured {refs.BandwidthKind} {refs.BandwidthBytesPerSecond / 1e9:F1} GB/s";
        double peak = options.PeakTflops * 1e12 ?? refs.MatmulFlops;
        string peakSource = options.PeakTflops is { } p ? $"given {p:F0} TFLOP/s" : $"measured {refs.MatmulFlops / 1e12:G3} TFLOP/s";

        var decode = new List<Result>();
        var prefill = new List<PrefillResult>();
        var engine = new List<(ScalarType, HostOverhead)>();
        var errors = new List<string>();
        void Try(string what, Action measure)
        {
            try
            {
                measure();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                errors.Add($"{what}: {e.GetType().Name}: {e.Message}");
                output.WriteLine($"  {what} FAILED: {e.Message}");
            }
        }
        IWeightSource weights = cuda || options.Config is not null ? new DeviceRandomWeights(config, options.Seed) : RandomWeights.Create(config, options.Seed);
        try
        {
            foreach (var dtype in options.DTypes)
            {
                using var model = LlamaModel.Create(config, weights, options.Device, dtype);
                double bytesPerStep = (double)config.ParametersReadPerStep * PagedKvCache.ElementSize(dtype);
                foreach (int batch in options.BatchSizes)
                    Try($"{dtype} decode batch {batch}", () =>
                    {
                        var steps = MeasureDecode(model, options, batch);
                        double median = steps.Order().ElementAt(steps.Count / 2);
                        decode.Add(new Result(dtype, batch, batch / median, 1000 * median, 1000 * steps.Min(), bound / bytesPerStep));
                        output.WriteLine($"  {dtype} batch {batch}: {batch / median:F1} tokens/s");
                    });
                if (options.PrefillTokens > 0)
                    Try($"{dtype} prefill {options.PrefillTokens}", () => prefill.Add(MeasurePrefill(model, options)));
                if (options.EngineLoop is { } loop)
                    Try($"{dtype} engine loop", () => engine.Add((dtype, loop(model))));
            }
        }
        finally
        {
            (weights as IDisposable)?.Dispose();
        }
        return new Report(options, config, refs, bound, boundSource, peak, peakSource, decode, prefill, engine, errors);
    }

    private static LlamaConfig ConfigOf(DecodeBenchmarkOptions o)
    {
        // At least 512 positions: the engine loop's prompts and steps run on the same model.
        int maxSeqLen = Math.Max(Math.Max(o.ContextTokens + o.WarmupSteps + o.Steps + 1, o.PrefillTokens + 1), 512);
        var config = o.Config is { } c
            ? c with { MaxSeqLen = maxSeqLen }
            : new LlamaConfig
            {
                Dim = o.Dim, HiddenDim = o.HiddenDim, NumLayers = o.NumLayers, NumHeads = o.NumHeads,
                NumKvHeads = o.NumKvHeads, VocabSize = o.VocabSize, TieWordEmbeddings = true, MaxSeqLen = maxSeqLen,
            };
        config.Validate("decode benchmark options");
        return config;
    }

    /// <returns>Seconds of each timed step.</returns>
    private static List<double> MeasureDecode(LlamaModel model, DecodeBenchmarkOptions o, int batch)
    {
        int totalTokens = o.ContextTokens + o.WarmupSteps + o.Steps;
        int blocksPerSeq = (totalTokens + o.BlockSize - 1) / o.BlockSize;
        using var cache = new PagedKvCache(model.Config, batch * blocksPerSeq, o.BlockSize, model.Device, model.DType);
        var rng = new Random(1);
        var prompt = Enumerable.Range(0, o.ContextTokens).Select(_ => rng.Next(model.Config.VocabSize)).ToArray();
        // Every sequence owns its blocks (no shared prefix, so each step reads batch x context of KV).
        var tables = Enumerable.Range(0, batch).Select(b => Enumerable.Range(b * blocksPerSeq, blocksPerSeq).ToArray()).ToArray();
        using (model.Forward([new SequenceChunk(prompt, 0, tables[0])], cache)) { }
        CopyPrompt(cache, tables, (o.ContextTokens + o.BlockSize - 1) / o.BlockSize);

        var next = Enumerable.Range(0, batch).Select(b => prompt[b % prompt.Length]).ToArray();
        var chunks = new SequenceChunk[batch];
        double Step(int position)
        {
            for (int b = 0; b < batch; b++) chunks[b] = new SequenceChunk([next[b]], position, tables[b]);
            var sw = Stopwatch.StartNew();
            using var logits = model.Forward(chunks, cache);
            using var argmax = logits.argmax(-1);
            using var host = argmax.cpu();
            var ids = host.data<long>().ToArray();
            double seconds = sw.Elapsed.TotalSeconds;
            for (int b = 0; b < batch; b++) next[b] = (int)ids[b];
            return seconds;
        }
        int pos = o.ContextTokens;
        for (int i = 0; i < o.WarmupSteps; i++) Step(pos++);
        var times = new List<double>(o.Steps);
        for (int i = 0; i < o.Steps; i++) times.Add(Step(pos++));
        return times;
    }

    /// <summary>The prompt's KV, prefilled into sequence 0's blocks, copied into every other sequence's.</summary>
    private static void CopyPrompt(PagedKvCache cache, int[][] tables, int promptBlocks)
    {
        if (tables.Length == 1) return;
        using var scope = NewDisposeScope();
        var source = tensor(Enumerable.Range(1, tables.Length - 1).SelectMany(_ => tables[0][..promptBlocks]).Select(b => (long)b).ToArray(), device: cache.Device);
        var target = tensor(tables.Skip(1).SelectMany(t => t[..promptBlocks]).Select(b => (long)b).ToArray(), device: cache.Device);
        for (int l = 0; l < cache.NumLayers; l++)
        {
            cache.Keys(l).index_copy_(0, target, cache.Keys(l).index_select(0, source));
            cache.Values(l).index_copy_(0, target, cache.Values(l).index_select(0, source));
        }
    }

    private static PrefillResult MeasurePrefill(LlamaModel model, DecodeBenchmarkOptions o)
    {
        var c = model.Config;
        int n = o.PrefillTokens;
        int blocks = (n + o.BlockSize - 1) / o.BlockSize;
        using var cache = new PagedKvCache(c, blocks, o.BlockSize, model.Device, model.DType);
        var rng = new Random(2);
        var chunk = new SequenceChunk(Enumerable.Range(0, n).Select(_ => rng.Next(c.VocabSize)).ToArray(), 0, Enumerable.Range(0, blocks).ToArray());
        var times = new List<double>();
        for (int i = 0; i < 4; i++)
        {
            DeviceSelection.Synchronize(model.Device);
            var sw = Stopwatch.StartNew();
            using (var logits = model.Forward([chunk], cache)) DeviceSelection.Synchronize(model.Device);
            if (i > 0) times.Add(sw.Elapsed.TotalSeconds); // the first is a warm-up
        }
        long perLayer = (long)c.Dim * (c.QueryDim + 2L * c.KvDim) + (long)c.QueryDim * c.Dim + 3L * c.Dim * c.HiddenDim;
        // Matmuls: 2 flops per weight per token, the LM head for the last token; causal attention: QK^T and PV over half the square.
        double flops = 2.0 * n * perLayer * c.NumLayers + 2.0 * c.Dim * c.VocabSize + 2.0 * (double)n * n * c.QueryDim * c.NumLayers;
        return new PrefillResult(model.DType, n, 1000 * times.Order().ElementAt(times.Count / 2), flops);
    }
}
