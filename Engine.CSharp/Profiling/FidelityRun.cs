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
    public static LatencySummary Of(IReadOnlyList<double> ttft, IReadOnlyList<double> e2e, double durationS)
    {
        var t = LatencyStats.Of(ttft.ToArray());
        var e = LatencyStats.Of(e2e.ToArray());
        return new(ttft.Count, t.Mean, t.P99, e.Mean, e.P99, durationS);
    }
}

/// <summary>Both sides of a fidelity check on the same requests.</summary>
public sealed record FidelityResult(string Workload, LatencySummary Real, LatencySummary Simulated, int NumFailed, IReadOnlyList<string> Notes, StepComparison Steps)
{
    /// <summary>The simulator with the profile's linear fit alone (null when the profile has no measured points).</summary>
    public LatencySummary? SimulatedLinear { get; init; }

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
        var real = await RunRealAsync(model, settings, workload, stepLog, log, cancellationToken);
        var ok = real.Outcomes.Where(x => x.Success).ToList();
        if (ok.Count == 0)
            throw new InvalidOperationException($"fidelity: every request to the real engine failed, the first with: {real.Outcomes[0].Error}");
        var realSummary = LatencySummary.Of(ok.Select(x => x.Ttft).ToList(), ok.Select(x => x.Latency).ToList(), real.Duration);

        var requests = workload.Requests.Select((r, i) => new SimRequest(i, r.ArrivalSec, real.Outcomes[i].PromptLen, r.OutputLen)).ToList();
        var plan = OneReplicaPlan(model.Name, options);
        LatencySummary Simulate(IIterationTimeModel stepTime)
        {
            var sim = new Simulation.Simulation(new SimulationSetup
            {
                Requests = requests,
                Plans = [plan],
                ReplicaModels = _ => new ReplicaModel(schedulerConfig, stepTime),
            });
            sim.Run();
            // Only the requests that succeeded for real are compared.
            var records = Enumerable.Range(0, requests.Count).Where(i => real.Outcomes[i].Success).Select(i => sim.Metrics.Records[i]).ToList();
            return LatencySummary.Of(records.Select(r => r.Ttft).ToList(), records.Select(r => r.E2e).ToList(), sim.Now);
        }
        var simSummary = Simulate(iterationTime);
        // The ablation: the same profile's linear fit without its measured residuals.
        var linearSummary = iterationTime.Table is null ? null : Simulate(new LinearOnly(iterationTime));
        var steps = StepComparison.Of(stepLog.Snapshot(), iterationTime.Seconds);
        return new FidelityResult(workload.Description, realSummary, simSummary, real.Failed, [.. workload.Notes, .. real.Notes], steps)
        {
            SimulatedLinear = linearSummary,
        };
    }

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

    private static async Task<BenchResult> RunRealAsync(LoadedModel model, EngineSettings settings, BenchWorkload workload, StepLog steps, TextWriter log, CancellationToken ct)
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
