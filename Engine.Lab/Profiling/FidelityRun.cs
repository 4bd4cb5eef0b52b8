using Microsoft.Extensions.Logging;
using OServe.Contracts;
using OServe.Engine.Benchmarking;
using OServe.Engine.Execution;
using OServe.Engine.Serving;
using OServe.Engine.Simulation;
using OServe.Models;

namespace OServe.Engine.Profiling;

/// <summary>Mean and P99 of TTFT and E2E latency (seconds) over the requests of one side.</summary>
public sealed record LatencySummary(int NumRequests, double MeanTtft, double P99Ttft, double MeanE2e, double P99E2e, double DurationS)
{
    public static LatencySummary Of(IReadOnlyList<(double Ttft, double E2e)> requests, double durationS) =>
        Of(requests.Select(r => r.Ttft).ToList(), requests.Select(r => r.E2e).ToList(), durationS);

    public static LatencySummary Of(IReadOnlyList<double> ttft, IReadOnlyList<double> e2e, double durationS)
    {
        var t = LatencyStats.Of(ttft.ToArray());
        var e = LatencyStats.Of(e2e.ToArray());
        return new(ttft.Count, t.Mean, t.P99, e.Mean, e.P99, durationS);
    }

    /// <summary>Each metric's median over several summaries (of repeated runs); the count is the first's.</summary>
    public static LatencySummary MedianOf(IEnumerable<LatencySummary> summaries)
    {
        var all = summaries.ToList();
        if (all.Count == 0) throw new ArgumentException("no summaries to take the median of", nameof(summaries));
        double Median(Func<LatencySummary, double> metric) => LatencyStats.Of(all.Select(metric).ToArray()).Median;
        return new(all[0].NumRequests, Median(x => x.MeanTtft), Median(x => x.P99Ttft), Median(x => x.MeanE2e), Median(x => x.P99E2e), Median(x => x.DurationS));
    }
}

/// <summary>
/// What the real engine did with a fidelity workload: the load generator's per-request outcomes and
/// the engine's steps. <see cref="Simulate"/> replays the same requests through the simulator.
/// </summary>
public sealed record RealRun(BenchWorkload Workload, BenchResult Bench, IReadOnlyList<StepRecord> Steps, OServe.Engine.Scheduling.SchedulerConfig SchedulerConfig, Plan Plan)
{
    /// <summary>Indices of the requests that succeeded on the real engine: the only ones compared.</summary>
    public IReadOnlyList<int> Compared { get; } = Enumerable.Range(0, Bench.Outcomes.Count).Where(i => Bench.Outcomes[i].Success).ToList();

    public double Duration => Bench.Duration;

    /// <summary>TTFT and E2E of the compared requests as the load generator measured them.</summary>
    public IReadOnlyList<(double Ttft, double E2e)> Measured => Compared.Select(i => (Bench.Outcomes[i].Ttft, Bench.Outcomes[i].Latency)).ToList();

    public LatencySummary Summary => LatencySummary.Of(Measured, Duration);

    /// <summary>
    /// The same requests through the simulator (the engine's scheduler with the same limits and KV
    /// blocks): prompts of the lengths the server really tokenised, the planned arrivals. Each request
    /// reaches the engine <paramref name="frontendSeconds"/> after it is sent (HTTP, tokenisation),
    /// and that time counts in its TTFT and E2E, as it does for the load generator.
    /// </summary>
    /// <param name="frontendSeconds">Null: the profile's, when the model is a <see cref="MeasuredIterationTime"/>, else 0.</param>
    public IReadOnlyList<(double Ttft, double E2e)> Simulate(IIterationTimeModel stepTime, double? frontendSeconds = null)
    {
        double frontend = frontendSeconds ?? (stepTime as MeasuredIterationTime)?.FrontendSeconds ?? 0;
        var requests = Workload.Requests.Select((r, i) => new SimRequest(i, r.ArrivalSec + frontend, Bench.Outcomes[i].PromptLen, r.OutputLen)).ToList();
        var config = SchedulerConfig;
        var sim = new Simulation.Simulation(new SimulationSetup
        {
            Requests = requests,
            Plans = [Plan],
            ReplicaModels = _ => new ReplicaModel(config, stepTime),
        });
        sim.Run();
        return Compared.Select(i => (sim.Metrics.Records[i].Ttft + frontend, sim.Metrics.Records[i].E2e + frontend)).ToList();
    }

    /// <summary><see cref="Simulate"/>'s summary; its duration, like the load generator's, runs from the first send to the last completion.</summary>
    public LatencySummary SimulatedSummary(IIterationTimeModel stepTime, double? frontendSeconds = null)
    {
        var simulated = Simulate(stepTime, frontendSeconds);
        double first = Workload.Requests.Min(r => r.ArrivalSec);
        double last = Compared.Select((i, k) => Workload.Requests[i].ArrivalSec + simulated[k].E2e).Max();
        return LatencySummary.Of(simulated, last - first);
    }
}

/// <summary>One real run of a fidelity check, and the simulator on the requests it completed.</summary>
/// <param name="SpeedBefore"><see cref="FidelityRun.SpeedCheck"/> right before the real run.</param>
/// <param name="SpeedAfter">The same right after it.</param>
/// <param name="SimulatedAtSpeed">The simulator with the profile's step times scaled by the mean of the two speed checks: how much of the error is the machine's drift since it was profiled.</param>
public sealed record FidelityRepeat(LatencySummary Real, LatencySummary Simulated, LatencySummary SimulatedAtSpeed, int NumFailed, double SpeedBefore, double SpeedAfter);

/// <summary>
/// Both sides of a fidelity check on the same requests. With several real runs the headline
/// <see cref="Real"/> is the median of each metric over them, and so is <see cref="Simulated"/>
/// (the same number each time unless the runs completed different requests).
/// </summary>
public sealed record FidelityResult(string Workload, IReadOnlyList<FidelityRepeat> Runs, IReadOnlyList<string> Notes, StepComparison Steps)
{
    public LatencySummary Real { get; } = LatencySummary.MedianOf(Runs.Select(r => r.Real));
    public LatencySummary Simulated { get; } = LatencySummary.MedianOf(Runs.Select(r => r.Simulated));
    public LatencySummary SimulatedAtSpeed { get; } = LatencySummary.MedianOf(Runs.Select(r => r.SimulatedAtSpeed));
    public int NumFailed => Runs.Sum(r => r.NumFailed);

    /// <summary>The simulator with the profile's linear fit alone (null when the profile has no measured points).</summary>
    public LatencySummary? SimulatedLinear { get; init; }

    /// <summary>(max - min) / median of one metric over the real runs: the real engine's own run-to-run noise.</summary>
    public double RealSpread(Func<LatencySummary, double> metric)
    {
        var values = Runs.Select(r => metric(r.Real)).ToList();
        return (values.Max() - values.Min()) / metric(Real);
    }

    public static double RelativeError(double simulated, double real) => (simulated - real) / real;
}

/// <summary>
/// Runs the real engine (this process, the OpenAI server on 127.0.0.1, requests sent by
/// <see cref="BenchRunner"/> at their arrival times) and then the simulator (the engine's scheduler
/// with the same limits and KV blocks, step time from the profile) on the same requests: the
/// simulated prompts have the lengths the server really tokenised, arrivals are the planned ones.
/// </summary>
public static class FidelityRun
{
    /// <param name="iterationTime">This machine's step time, from its profile (<see cref="ProfileFile.LoadStepTime"/>).</param>
    public static async Task<FidelityResult> RunAsync(FidelityOptions options, LoadedModel model, MeasuredIterationTime iterationTime,
        TextWriter? log = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        log ??= TextWriter.Null;
        var runs = new List<FidelityRepeat>();
        var reals = new List<RealRun>();
        for (int repeat = 0; repeat < options.Repeats; repeat++)
        {
            if (options.Repeats > 1) log.WriteLine($"real run {repeat + 1} of {options.Repeats}");
            double speedBefore = SpeedCheck(model, iterationTime);
            var real = await RunRealAsync(options, model, repeat == 0 ? log : null, cancellationToken);
            double speedAfter = SpeedCheck(model, iterationTime);
            var simulated = real.SimulatedSummary(iterationTime);
            var atSpeed = real.SimulatedSummary(new Scaled(iterationTime, (speedBefore + speedAfter) / 2), iterationTime.FrontendSeconds);
            runs.Add(new FidelityRepeat(real.Summary, simulated, atSpeed, real.Bench.Failed, speedBefore, speedAfter));
            reals.Add(real);
        }
        // The ablation: the same profile's linear fit alone (no measured residuals, after-idle or serving factors).
        var linear = iterationTime.Table is null ? null
            : LatencySummary.MedianOf(reals.Select(r => r.SimulatedSummary(new LinearOnly(iterationTime), frontendSeconds: 0)));
        var steps = StepComparison.Of(reals.Select(r => r.Steps).ToList(), iterationTime.Seconds);
        return new FidelityResult(reals[0].Workload.Description, runs,
            [.. reals[0].Workload.Notes, .. reals.SelectMany(r => r.Bench.Notes).Distinct()], steps)
        {
            SimulatedLinear = linear,
        };
    }

    /// <summary>A few reference shapes of the default profile grid (decodes alone and with a prompt), within the model's context.</summary>
    public static ProfileGrid SpeedCheckGrid(int maxModelLen) => new([Math.Min(384, maxModelLen / 2)], [1, 4], [0, 64], 3);

    /// <summary>
    /// This machine's speed now against the profile: the reference steps timed back to back, over
    /// the profile's time for them (no serving factors). 1 means as profiled; 1.2, 20% slower. A
    /// shared machine drifts; a check whose before and after differ from 1 compared a profile with a
    /// machine that no longer matched it.
    /// </summary>
    public static double SpeedCheck(LoadedModel model, MeasuredIterationTime profile)
    {
        var samples = new StepProfiler(model).Run(SpeedCheckGrid(model.Config.MaxSeqLen), afterIdle: false).Samples;
        var alone = profile.WithServing(ServingFactors.None, 0);
        return samples.Sum(s => s.MedianSeconds) / samples.Sum(s => alone.Seconds(s.Shape));
    }

    /// <summary>The real side alone: the engine behind its HTTP server, the workload sent by the load generator, every step logged.</summary>
    public static async Task<RealRun> RunRealAsync(FidelityOptions options, LoadedModel model, TextWriter? log = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        log ??= TextWriter.Null;
        var settings = new EngineSettings
        {
            MaxNumSeqs = options.MaxNumSeqs,
            MaxNumBatchedTokens = options.MaxNumBatchedTokens,
            KvCacheGib = options.KvCacheGib,
        };
        var schedulerConfig = LocalEngineBuilder.SchedulerConfigFor(model, settings);
        var workload = FidelityWorkload.Build(options, schedulerConfig.MaxModelLen);
        log.WriteLine($"workload: {workload.Description}");
        var stepLog = new StepLog();
        var bench = await ServeAndBenchAsync(model, settings, workload, stepLog, log, cancellationToken);
        if (!bench.Outcomes.Any(x => x.Success))
            throw new InvalidOperationException($"fidelity: every request to the real engine failed, the first with: {bench.Outcomes[0].Error}");
        return new RealRun(workload, bench, stepLog.Snapshot(), schedulerConfig, OneReplicaPlan(model.Name, options));
    }

    /// <summary>Another step-time model's steps times a factor (this machine's speed against its profile).</summary>
    private sealed class Scaled(IIterationTimeModel model, double factor) : IIterationTimeModel
    {
        public double StepSeconds(OServe.Engine.Scheduling.SchedulerOutput output) => factor * model.StepSeconds(output);
        public double StepSeconds(OServe.Engine.Scheduling.SchedulerOutput output, double idleSeconds) => factor * model.StepSeconds(output, idleSeconds);
    }

    /// <summary>The profile's linear fit alone, for the ablation column.</summary>
    private sealed class LinearOnly(MeasuredIterationTime model) : IIterationTimeModel
    {
        public double StepSeconds(OServe.Engine.Scheduling.SchedulerOutput output) => model.Linear(BatchShape.Of(output));
    }

    /// <summary>The plan both sides run: one unsharded replica with the check's scheduler limits.</summary>
    public static Plan OneReplicaPlan(string modelName, FidelityOptions options) => new()
    {
        Model = modelName,
        Cluster = "localhost",
        Planner = "fidelity",
        RequestTypes = [],
        Replicas = [new ReplicaSpec { Id = "r0", GpuType = "cpu", Devices = ["localhost/0"], MaxNumSeqs = options.MaxNumSeqs, MaxNumBatchedTokens = options.MaxNumBatchedTokens }],
        Routing = [],
    };

    private static async Task<BenchResult> ServeAndBenchAsync(LoadedModel model, EngineSettings settings, BenchWorkload workload, StepLog steps, TextWriter log, CancellationToken ct)
    {
        var engine = LocalEngineBuilder.Create(model, settings, stepObserver: steps);
        await using (engine)
        {
            var app = ServerHost.Build(new ServeOptions { Port = 0 }, engine, configure: b => b.Logging.ClearProviders(), engineClock: () => engine.Clock.Now);
            await app.StartAsync(ct);
            try
            {
                var bench = new BenchOptions
                {
                    BaseUrl = ServerHost.BoundAddress(app),
                    Model = engine.ModelName,
                    Tokenizer = BenchTokenizerChoice.Server,
                    KeepGeneratedTexts = false,
                };
                return await BenchRunner.RunAsync(bench, workload, log, cancellationToken: ct);
            }
            finally
            {
                await app.StopAsync(CancellationToken.None);
                await app.DisposeAsync();
            }
        }
    }
}
