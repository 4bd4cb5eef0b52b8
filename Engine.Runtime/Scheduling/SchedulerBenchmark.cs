using System.Diagnostics;
using OServe.Engine.Execution;

namespace OServe.Engine.Scheduling;

/// <summary>
/// How fast the scheduler + engine core run on a virtual clock, the simulator's hot path: one
/// replica, Poisson arrivals, lengths drawn like a chat trace, iteration time from a linear
/// cost model. Prints nothing; the caller reports the figures.
/// </summary>
public static class SchedulerBenchmark
{
    public sealed record Result(int NumRequests, long NumSteps, long NumTokens, double SimulatedSeconds, double WallSeconds, long AllocatedBytes, long NumPreemptions)
    {
        public double MicrosecondsPerStep => WallSeconds * 1e6 / NumSteps;
        public double StepsPerSecond => NumSteps / WallSeconds;
        public double BytesPerStep => (double)AllocatedBytes / NumSteps;
    }

    public static Result Run(int numRequests = 20_000, double requestsPerSecond = 8, int seed = 1, SchedulerConfig? config = null)
    {
        config ??= new SchedulerConfig { NumKvBlocks = 8192, BlockSize = 16, MaxNumSeqs = 256, MaxNumBatchedTokens = 2048, MaxModelLen = 8192 };
        var clock = new VirtualClock();
        // A 7B-class replica on one GPU: 12 ms per step plus 0.1 ms per 1k batched tokens squared-ish.
        var runner = new SimulatedModelRunner(clock, o => 0.012 + 0.00012 * o.NumBatchedTokens + 0.0000004 * o.NumChunks * 1000);
        var core = new EngineCore(new Scheduler(config), runner, clock, NullSink.Instance);
        var rng = new Random(seed);
        var sampling = new SamplingParams { IgnoreEos = true };
        var arrivals = new (double Time, int Prompt, int Output)[numRequests];
        double t = 0;
        for (int i = 0; i < numRequests; i++)
        {
            t += -Math.Log(1 - rng.NextDouble()) / requestsPerSecond;
            int prompt = Math.Clamp((int)(Math.Exp(rng.NextDouble() * 2.5 + 5)), 8, 4000); // ~150..1800 tokens
            int output = Math.Clamp((int)(Math.Exp(rng.NextDouble() * 3 + 3)), 4, 1000);     // ~20..400 tokens
            arrivals[i] = (t, prompt, output);
        }
        var samplingByLength = new Dictionary<int, SamplingParams>();

        long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        var stopwatch = Stopwatch.StartNew();
        int next = 0;
        while (next < numRequests || core.HasWork)
        {
            if (!core.HasWork && next < numRequests && arrivals[next].Time > clock.Now)
                clock.AdvanceTo(arrivals[next].Time);
            while (next < numRequests && arrivals[next].Time <= clock.Now)
            {
                var (time, prompt, output) = arrivals[next];
                if (!samplingByLength.TryGetValue(output, out var s))
                    samplingByLength[output] = s = sampling with { MaxTokens = output };
                core.AddRequest(new GenerationRequest($"r{next}", new SyntheticPrompt(prompt), s) { ArrivalTime = time });
                next++;
            }
            core.Step();
        }
        stopwatch.Stop();
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        return new Result(numRequests, core.NumSteps, core.GenerationTokensTotal, clock.Now, stopwatch.Elapsed.TotalSeconds, allocated, core.Scheduler.NumPreemptionsTotal);
    }

    private sealed class NullSink : IGenerationSink
    {
        public static readonly NullSink Instance = new();
        public void OnOutput(in RequestOutput output) { }
    }
}
