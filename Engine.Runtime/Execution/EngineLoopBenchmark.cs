using System.Diagnostics;
using OServe.Engine.Scheduling;
using OServe.Models.Benchmarks;
using OServe.Models.Llama;
using OServe.Models.Tokenization;

namespace OServe.Engine.Execution;

/// <summary>
/// The engine's own host time per step at a fixed batch: the real scheduler, runner and output path
/// (detokenising when a tokenizer is given) decode <c>batch</c> requests at once, and each timed step
/// reports what <see cref="EngineCore.LastStepTimings"/> and <see cref="TorchModelRunner.LastTimings"/>
/// measured: scheduling, batch preparation, the index plan and its upload, sampling bookkeeping and
/// the update with its outputs count as host time; launching kernels and waiting for the device do
/// not (on a GPU they overlap the device's work). Requests sample (temperature 0.8, top-p 0.95), so
/// the sampler's path is part of the step.
/// </summary>
public static class EngineLoopBenchmark
{
    public static HostOverhead Run(LlamaModel model, ITokenizer? tokenizer, int batch = 64, int promptTokens = 64, int steps = 30)
    {
        const int blockSize = 16;
        int warmup = 5;
        int perSequence = (promptTokens + warmup + steps + 2 + blockSize - 1) / blockSize;
        if (promptTokens + warmup + steps + 2 > model.Config.MaxSeqLen)
            throw new ArgumentException($"the engine loop needs {promptTokens + warmup + steps + 2} positions, the model has {model.Config.MaxSeqLen}");
        var config = new SchedulerConfig
        {
            MaxNumSeqs = batch,
            MaxNumBatchedTokens = Math.Max(2048, batch * promptTokens),
            BlockSize = blockSize,
            NumKvBlocks = batch * perSequence + 1,
            MaxModelLen = model.Config.MaxSeqLen,
        };
        using var runner = TorchModelRunner.Create(model, config);
        var core = new EngineCore(new Scheduler(config), runner, new SystemClock(), NullSink.Instance, tokenizer is null ? null : new ModelTokenizer(tokenizer));
        var rng = new Random(3);
        var sampling = new SamplingParams { MaxTokens = warmup + steps + 2, Temperature = 0.8f, TopP = 0.95f, Seed = 1, IgnoreEos = true };
        for (int i = 0; i < batch; i++)
        {
            var prompt = Enumerable.Range(0, promptTokens).Select(_ => rng.Next(3, model.Config.VocabSize)).ToArray();
            core.AddRequest(new GenerationRequest($"loop-{i}", prompt, sampling with { Seed = (ulong)i }));
        }
        // Prefill everything, then a few decode steps so allocations and kernels settle.
        while (core.Scheduler.Running.Count < batch || core.Scheduler.Running.Any(s => s.NumOutputTokens == 0)) core.Step();
        for (int i = 0; i < warmup; i++) core.Step();

        var samples = new List<double[]>();
        for (int i = 0; i < steps; i++)
        {
            long start = Stopwatch.GetTimestamp();
            core.Step();
            double wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
            var s = core.LastStepTimings;
            var r = runner.LastTimings;
            if (core.Scheduler.Running.Count != batch) break;
            samples.Add([wall, s.ScheduleSeconds + s.UpdateSeconds + r.HostSeconds, s.ScheduleSeconds, r.PrepareSeconds, r.PlanSeconds,
                r.SampleSeconds, s.UpdateSeconds, r.LaunchSeconds, r.WaitSeconds]);
        }
        foreach (var seq in core.Scheduler.Running.ToList()) core.Abort(seq.RequestId);
        if (samples.Count == 0) throw new InvalidOperationException($"the engine loop never ran {batch} sequences at once");
        double Median(int k) => 1000 * samples.Select(x => x[k]).Order().ElementAt(samples.Count / 2);
        return new HostOverhead(batch, samples.Count, Median(0), Median(1), Median(2), Median(3), Median(4), Median(5), Median(6), Median(7), Median(8));
    }

    private sealed class NullSink : IGenerationSink
    {
        public static NullSink Instance { get; } = new();
        public void OnOutput(in RequestOutput output) { }
    }
}
