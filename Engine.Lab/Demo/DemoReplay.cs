using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Benchmarking;
using OServe.Engine.Control;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using OServe.Models;

namespace OServe.Engine.Demo;

/// <summary>
/// Serves a plan on a fresh runtime of one-core logical devices behind the OpenAI server on
/// 127.0.0.1 and replays the workload's trace over real HTTP streams (the benchmark's load
/// generator); with controller options, the controller forecasts and re-plans every window and
/// switches the runtime live.
/// </summary>
public static class DemoReplay
{
    /// <summary>One long prompt and a few chats per replica, sent at once (the router spreads them).</summary>
    public static Task WarmUpAsync(IInferenceEngine engine, DemoRequestShapes shapes, int replicas, CancellationToken ct) =>
        Task.WhenAll(Enumerable.Range(0, replicas).SelectMany(i => new[]
        {
            EngineProbe.TimeAsync(engine, shapes.LongInput, 2, 1000 + i, ct),
            EngineProbe.TimeAsync(engine, shapes.ChatInput, 4, 2000 + i, ct),
            EngineProbe.TimeAsync(engine, shapes.ChatInput, 4, 3000 + i, ct),
        }));

    /// <summary>The file name of a replay's requests under <see cref="DemoOptions.RequestsCsvDir"/>: e.g. `static-2-x-tp1-1.csv`.</summary>
    public static string CsvName(string deployment, int repeat)
    {
        var name = new string(deployment.Select(c => char.IsLetterOrDigit(c) ? char.ToLowerInvariant(c) : '-').ToArray());
        while (name.Contains("--", StringComparison.Ordinal)) name = name.Replace("--", "-", StringComparison.Ordinal);
        return $"{name.Trim('-')}-{repeat}.csv";
    }

    public static async Task<RunResult> RunAsync(string deployment, int repeat, LoadedModel model, DemoRunSettings settings, Cluster cluster, Plan plan,
        string tracePath, DemoOptions options, ControllerOptions? controllerOptions, TextWriter output, bool interactive, CancellationToken cancellationToken)
    {
        string phase = $"{deployment} #{repeat}";
        await using var runtime = settings.Start(model, cluster, plan);
        // Warm-up before anything is counted, as a server warms up before it takes traffic: the
        // first prompts fill the replica's caches and the first-call costs. A replica built later
        // by a switch runs on pooled threads that have served before (ComputeThreads); the
        // switch's time stays in the adaptive replay.
        await WarmUpAsync(runtime, options.Shapes, plan.Replicas.Count, cancellationToken);
        var recorder = new ArrivalRecorder(plan.RequestTypes);
        IInferenceEngine served = controllerOptions is null ? runtime : new ArrivalObservingEngine(runtime, recorder);
        var log = controllerOptions is null ? null : new ControllerLog();
        var accounting = new RequestAccounting();
        var progress = new BenchProgress();
        var view = new DemoLiveView(phase, options.DurationS, progress, () => PlanText.Replicas(runtime.Current), log);
        runtime.RequestFinished += m =>
        {
            accounting.Finished(m.RequestId);
            view.OnFinished(m);
        };
        if (log is not null && !interactive)
            log.Appended += e =>
            {
                // Switches as they happen (the full account, with the candidates, follows the replays).
                if (e is SwitchResultEvent { Result.Applied: true } r &&
                    log.OfType<SwitchDecisionEvent>().LastOrDefault(d => d.Window == r.Window) is { Kind: SwitchDecisionKind.Switch } d)
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  [{phase} {e.AtS,5:F1}s] window {e.Window}: switched to {PlanText.Replicas(runtime.Current)} in {r.Result.Seconds:F2} s: {d.Reason}"));
            };

        await using var app = HttpProbe.BuildServer(served, runtime);
        await app.StartAsync(cancellationToken);
        using var stopController = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var controller = controllerOptions is null ? null : new PlanController(new PlanRuntimeTarget(runtime), controllerOptions, recorder, log!);
        var controlLoop = controller?.RunAsync(stopController.Token) ?? Task.CompletedTask;
        try
        {
            var bench = BenchRunner.RunAsync(new BenchOptions
            {
                BaseUrl = ServerHost.BoundAddress(app), Model = model.Name, Dataset = BenchDataset.Trace, DatasetPath = tracePath,
                TraceFormat = OServe.Planner.Workload.TraceFormat.Azure, SkipInitialTest = true, KeepGeneratedTexts = false,
                PercentileMetrics = [BenchMetric.Ttft, BenchMetric.E2el], MetricPercentiles = [50, 99], Seed = options.Seed,
                RequestTimeout = TimeSpan.FromSeconds(Math.Max(60, options.DurationS * 4)),
            }, progress: progress, cancellationToken: cancellationToken);
            await view.RunAsync(output, interactive, bench);
            var result = await bench;
            // Stop re-planning before the books are closed: a late switch must not land after them.
            await stopController.CancelAsync();
            await controlLoop;
            await accounting.WaitForAsync(result.Completed, TimeSpan.FromSeconds(2), cancellationToken);
            var books = accounting.Check(result.NumPrompts, result.Completed);
            var metrics = RunMetrics.Of(result, (options.Shapes.ChatInput + options.Shapes.LongInput) / 2);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{phase}: {books.Describe()} in {result.Duration:F1} s; P99 TTFT {metrics.P99TtftMs:F0} ms, P99 E2E {metrics.P99E2eMs:F0} ms; " +
                $"final plan {PlanText.Replicas(runtime.Current)}"));
            if (options.RequestsCsvDir is { } dir)
                OutcomesCsv.Write(Path.Combine(dir, CsvName(deployment, repeat)), result.Outcomes);
            if (options.ShowWindows && log is not null)
                foreach (var e in log.Events.Where(e => e is not PlanEvent)) // a plan's text repeats its decision's
                    output.WriteLine($"  {phase} {e.Describe().TrimStart()}");
            return new RunResult(deployment, repeat, metrics, books, log, plan, runtime.Current);
        }
        finally
        {
            await stopController.CancelAsync();
            await controlLoop;
            await app.StopAsync(CancellationToken.None);
        }
    }
}
