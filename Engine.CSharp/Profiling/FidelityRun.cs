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
}

/// <summary>Both sides of a fidelity check on the same requests.</summary>
public sealed record FidelityResult(string Workload, LatencySummary Real, LatencySummary Simulated, int NumFailed, IReadOnlyList<string> Notes, StepComparison Steps)
{
    /// <summary>The simulator with the profile's linear fit alone (null when the profile has no measured points).</summary>
    public LatencySummary? SimulatedLinear { get; init; }

    /// <summary><see cref="FidelityRun.SpeedCheck"/> right before and right after the real run.</summary>
    public double SpeedBefore { get; init; } = double.NaN;
    public double SpeedAfter { get; init; } = double.NaN;

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
        double speedBefore = SpeedCheck(model, iterationTime);
        var real = await RunRealAsync(options, model, log, cancellationToken);
        double speedAfter = SpeedCheck(model, iterationTime);
        var simulated = real.Simulate(iterationTime);
        // The ablation: the same profile's linear fit alone (no measured residuals, after-idle or serving factors).
        var linear = iterationTime.Table is null ? null : real.Simulate(new LinearOnly(iterationTime), frontendSeconds: 0);
        var steps = StepComparison.Of(real.Steps, iterationTime.Seconds);
        return new FidelityResult(real.Workload.Description, real.Summary, LatencySummary.Of(simulated, real.Duration), real.Bench.Failed,
            [.. real.Workload.Notes, .. real.Bench.Notes], steps)
        {
            SimulatedLinear = linear is null ? null : LatencySummary.Of(linear, real.Duration),
            SpeedBefore = speedBefore,
            SpeedAfter = speedAfter,
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
