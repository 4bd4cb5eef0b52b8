using System.Diagnostics;
using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Engine.Simulation;
using OServe.Models;
using OServe.Models.Kv;

namespace OServe.Engine.Profiling;

/// <summary>One grid point as measured: the shape the scheduler really produced and the step times.</summary>
public sealed record ProfileSample(ProfilePoint Point, BatchShape Shape, double MedianSeconds, double MinSeconds, int NumRepeats)
{
    public StepTiming Timing => new(Shape, MedianSeconds);
}

/// <summary>A step timed right after the engine sat idle, against the same shape back to back.</summary>
public sealed record AfterIdleSample(ProfilePoint Point, BatchShape Shape, double MedianSeconds, double BackToBackSeconds)
{
    public double Ratio => MedianSeconds / BackToBackSeconds;
}

/// <summary>What <see cref="StepProfiler.Run"/> measured.</summary>
public sealed record ProfileRun(IReadOnlyList<ProfileSample> Samples, IReadOnlyList<AfterIdleSample> AfterIdle)
{
    /// <summary>The median after-idle / back-to-back ratio over the probed shapes (1 when none).</summary>
    public double AfterIdleFactor => AfterIdle.Count == 0 ? 1 : LatencyStats.Of([.. AfterIdle.Select(x => x.Ratio)]).Median;
}

/// <summary>
/// Times whole engine steps of the real engine (<see cref="EngineCore.Step"/>: schedule, the real
/// <see cref="TorchModelRunner"/> forward and sampling, update, detokenised output) on batch shapes
/// from a <see cref="ProfileGrid"/>. For each (context, decodes) group, decoding requests are set up
/// with the model skipped (their KV contents do not change a step's time), then each prefill size is
/// timed: a fresh prompt of that many tokens and max_tokens 1 joins the decodes, so every timed step
/// has exactly the grid's shape (checked). Greedy, ignore_eos, as the load generator sends. The
/// repeats are passes over the whole grid, and a point's time is the median over the passes.
/// </summary>
public sealed class StepProfiler(LoadedModel model, int blockSize = 16)
{
    private readonly Random _tokens = new(7);

    /// <summary>How long the engine waits before an "after idle" step: long enough for torch's threads to sleep and caches to go cold.</summary>
    public static readonly TimeSpan IdleBeforeStep = TimeSpan.FromMilliseconds(100);

    /// <param name="progress">Called after each pass with (steps timed, steps to time).</param>
    /// <param name="afterIdle">Also time the after-idle probes (<see cref="ProfileRun.AfterIdle"/>).</param>
    public ProfileRun Run(ProfileGrid grid, Action<int, int>? progress = null, bool afterIdle = true)
    {
        int maxModelLen = model.Config.MaxSeqLen;
        grid.Validate(maxModelLen);
        // Room for the largest group: its decodes growing through every timed step, plus one prompt.
        int decodeSteps = grid.PrefillTokens.Count * (grid.Repeats + 1);
        int capacityTokens = Math.Max(maxModelLen,
            grid.MaxDecodes * (grid.MaxContext + decodeSteps + blockSize) + grid.MaxPrefill + 2 * blockSize);
        var config = new SchedulerConfig
        {
            MaxNumSeqs = grid.MaxDecodes + 1,
            MaxNumBatchedTokens = Math.Max(2048, grid.MaxPrefill + grid.MaxDecodes),
            BlockSize = blockSize,
            NumKvBlocks = (capacityTokens + blockSize - 1) / blockSize,
            MaxModelLen = maxModelLen,
        };
        using var cache = new PagedKvCache(model.Config, config.NumKvBlocks, config.BlockSize, model.Model.Device, model.Model.DType);
        var runner = new SwitchableRunner(new TorchModelRunner(
            new OServe.Models.Parallelism.SingleDeviceLlama(model.Model, ownsModel: false), OServe.Models.Parallelism.ReplicaKvCache.Wrap(model.Config, cache)));
        var tokenizer = new ModelTokenizer(model.Tokenizer);
        var points = grid.Points().ToList();
        var groups = points.GroupBy(p => (p.NumDecodes, p.Context)).ToList();
        var times = points.ToDictionary(p => p, _ => new List<double>(grid.Repeats));
        var shapes = new Dictionary<ProfilePoint, BatchShape>();

        Warmup(config, runner, tokenizer);
        // Each pass times every point once, so a burst of other load on the machine spoils one
        // sample of a few points rather than every repeat of one point; the median drops it.
        for (int pass = 0; pass < grid.Repeats; pass++)
        {
            foreach (var group in groups)
                InGroup(config, runner, tokenizer, group.Key, core =>
                {
                    foreach (var point in group)
                    {
                        // The first time a shape runs is a warm-up (JIT paths, allocator sizes).
                        if (pass == 0) TimeStep(core, runner, point, $"warmup-{point}");
                        var (seconds, shape) = TimeStep(core, runner, point, $"{point}-{pass}");
                        times[point].Add(seconds);
                        shapes[point] = shape;
                    }
                });
            progress?.Invoke((pass + 1) * points.Count, grid.Repeats * points.Count);
        }
        var samples = points.Select(p =>
        {
            double[] sorted = [.. times[p]];
            var stats = LatencyStats.Of(sorted); // sorts in place
            return new ProfileSample(p, shapes[p], stats.Median, sorted[0], sorted.Length);
        }).ToList();
        return new ProfileRun(samples, afterIdle ? AfterIdle(grid, config, runner, tokenizer, samples) : []);
    }

    /// <summary>
    /// The engine waits for work between bursts; its next step is slower than a back-to-back one
    /// (torch's threads have gone to sleep, caches and TLBs are cold). Times the decode-free points
    /// and the one-decode points at the smallest context after an idle wait, in passes, each against
    /// its back-to-back median.
    /// </summary>
    private List<AfterIdleSample> AfterIdle(ProfileGrid grid, SchedulerConfig config, SwitchableRunner runner, ModelTokenizer tokenizer, IReadOnlyList<ProfileSample> hot)
    {
        int minContext = grid.Contexts.Min();
        var probes = hot.Where(s => s.Point.NumDecodes == 0 || (s.Point.NumDecodes == 1 && s.Point.Context == minContext)).ToList();
        var times = probes.ToDictionary(s => s.Point, _ => new List<double>(grid.Repeats));
        for (int pass = 0; pass < grid.Repeats; pass++)
            foreach (var group in probes.GroupBy(s => (s.Point.NumDecodes, s.Point.Context)))
                InGroup(config, runner, tokenizer, group.Key, core =>
                {
                    foreach (var sample in group)
                    {
                        Thread.Sleep(IdleBeforeStep);
                        times[sample.Point].Add(TimeStep(core, runner, sample.Point, $"idle-{sample.Point}-{pass}").Seconds);
                    }
                });
        return probes.Select(s => new AfterIdleSample(s.Point, s.Shape, LatencyStats.Of([.. times[s.Point]]).Median, s.MedianSeconds)).ToList();
    }

    /// <summary>Runs <paramref name="body"/> on a fresh engine whose decodes are set up at the group's count and context, then aborts them.</summary>
    private void InGroup(SchedulerConfig config, SwitchableRunner runner, ModelTokenizer tokenizer, (int NumDecodes, int Context) group, Action<EngineCore> body)
    {
        var core = new EngineCore(new Scheduler(config), runner, new SystemClock(), NullSink.Instance, tokenizer);
        SetUpDecodes(core, runner, group.NumDecodes, group.Context, model.Config.MaxSeqLen);
        body(core);
        foreach (var seq in core.Scheduler.Running.ToList())
            core.Abort(seq.RequestId);
    }

    private void Warmup(SchedulerConfig config, SwitchableRunner runner, ModelTokenizer tokenizer)
    {
        // JIT, torch's thread pool and the allocator settle before anything is timed.
        var core = new EngineCore(new Scheduler(config), runner, new SystemClock(), NullSink.Instance, tokenizer);
        core.AddRequest(Request("warmup", 64, 8));
        while (core.HasWork) core.Step();
    }

    private void SetUpDecodes(EngineCore core, SwitchableRunner runner, int numDecodes, int context, int maxModelLen)
    {
        if (numDecodes == 0) return;
        var seqs = new List<Sequence>();
        for (int i = 0; i < numDecodes; i++)
            seqs.Add(core.AddRequest(Request($"decode-{i}", context - 1, maxModelLen - (context - 1))));
        runner.SkipModel = true;
        try
        {
            // Prefill plus the first token: afterwards every sequence decodes at context `context`.
            while (seqs.Any(s => s.NumOutputTokens == 0)) core.Step();
        }
        finally { runner.SkipModel = false; }
    }

    /// <summary>One step of exactly the point's shape (checked); its wall seconds.</summary>
    private (double Seconds, BatchShape Shape) TimeStep(EngineCore core, SwitchableRunner runner, ProfilePoint point, string id)
    {
        if (point.PrefillTokens > 0)
            core.AddRequest(Request($"prefill-{id}", point.PrefillTokens, 1));
        long start = Stopwatch.GetTimestamp();
        core.Step();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var measured = runner.LastShape;
        if (measured.NumDecodes != point.NumDecodes || measured.PrefillTokens != point.PrefillTokens)
            throw new InvalidOperationException($"profile: the scheduler ran '{measured}' for grid point '{point}'");
        return (seconds, measured);
    }

    private GenerationRequest Request(string id, int promptTokens, int maxTokens)
    {
        var prompt = new int[promptTokens];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = _tokens.Next(3, model.Config.VocabSize);
        return new GenerationRequest(id, prompt, new SamplingParams { MaxTokens = maxTokens, Temperature = 0, IgnoreEos = true });
    }

    /// <summary>The real runner, or (while setting up) a stand-in that skips the forward pass and samples a fixed token.</summary>
    private sealed class SwitchableRunner(TorchModelRunner real) : IModelRunner
    {
        public bool SkipModel { get; set; }
        public BatchShape LastShape { get; private set; }

        public void Execute(SchedulerOutput output, Span<int> sampledTokens)
        {
            LastShape = BatchShape.Of(output);
            if (!SkipModel)
            {
                real.Execute(output, sampledTokens);
                return;
            }
            var chunks = output.Chunks;
            for (int k = 0; k < chunks.Length; k++)
                sampledTokens[k] = chunks[k].SamplesToken ? 13 : IModelRunner.NoToken;
        }
    }

    private sealed class NullSink : IGenerationSink
    {
        public static NullSink Instance { get; } = new();
        public void OnOutput(in RequestOutput output) { }
    }
}
