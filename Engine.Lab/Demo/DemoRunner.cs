using System.Diagnostics;
using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Engine.Orchestration;
using OServe.Models;
using OServe.Planner.CostModel;

namespace OServe.Engine.Demo;

/// <summary>
/// `oserve demo` in-process, on two logical CPU devices of one core each:
/// <list type="number">
/// <item>calibrate the cost model on this machine and measure both deployments the planner
/// chooses between (1 x tp2, 2 x tp1) against its predictions (<see cref="DemoCalibration"/>);</item>
/// <item>build a workload that moves between their regimes, sized by those measurements (<see cref="DemoWorkload"/>);</item>
/// <item>replay it over HTTP on the adaptive deployment (the controller forecasting, re-planning
/// with CP-SAT and switching live) and on each static one, interleaved, <see cref="DemoOptions.Repeats"/> times;</item>
/// <item>explain every switch, compare the deployments with their spread (<see cref="DemoSummary"/>);</item>
/// <item>show the paper-scale simulation (<see cref="PaperScaleSection"/>).</item>
/// </list>
/// </summary>
public static class DemoRunner
{
    public static async Task<DemoSummary> RunAsync(DemoOptions options, TextWriter output, bool interactive, CancellationToken cancellationToken)
    {
        options.Validate();
        var wall = Stopwatch.StartNew();
        var settings = new DemoRunSettings { Device = options.Device, InFlight = options.InFlight };
        var shapes = options.Shapes;
        using var model = BuiltInModel.Create(settings.Model with { Device = options.Device });
        shapes.Validate(settings.Engine.MaxModelLen ?? model.Config.MaxSeqLen);
        output.WriteLine($"model: {model.Description}");
        if (options.Device is { type: TorchSharp.DeviceType.CUDA } gpu)
            output.WriteLine($"devices: 2 slots of {gpu} (the CPU's one-core trade-off does not carry over: on a GPU both shapes share one device)");
        else output.WriteLine($"devices: 2 logical CPU devices of one core each ({Environment.ProcessorCount} cores here): a replica's work on a device runs on one thread " +
            "with one torch intra-op thread, and a tp2 replica's two shards run at the same time, one per core");
        var card = ModelCardOf.Llama(model.Config, model.Name, model.Model.DType);

        var calibration = await DemoCalibration.RunAsync(model, card, shapes, settings, options.CalibrationRepeats, cancellationToken);
        foreach (var line in calibration.Render(shapes)) output.WriteLine(line);
        var coefficients = calibration.Coefficients;
        if (options.ProfilePath is { } profile)
        {
            var loaded = CostCoefficientsModule.load(profile);
            if (loaded.IsError) throw new ArgumentException(string.Join("; ", loaded.ErrorValue));
            coefficients = loaded.ResultValue;
            output.WriteLine($"coefficients from {profile} (device figures still measured here)");
        }
        if (options.ProfileOutPath is { } outPath)
        {
            CpuCostCalibration.WriteProfile(outPath, calibration.Cpu);
            output.WriteLine($"profile written to {outPath}");
        }
        var cluster = calibration.Cluster;

        var rates = DemoRates.For(calibration.Of(DemoShapes.Tp2), calibration.Of(DemoShapes.TwoTp1)).Scaled(options.RateScale);
        var workload = DemoWorkload.Build(shapes, rates, options.DurationS, options.WindowS, options.Seed);
        output.WriteLine($"workload: {workload.Description}");
        var counts = workload.CountPerPhase();
        for (int i = 0; i < workload.Phases.Count; i++)
        {
            var p = workload.Phases[i];
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {p.FromS,5:F1}-{p.ToS,5:F1} s  {p.Label,-26} {p.Type} {p.RateFromRps:F1}{(p.RateToRps != p.RateFromRps ? $" -> {p.RateToRps:F1}" : "")} req/s ({counts[i]} requests)"));
        }
        // With a profile file the coefficients are not the ones calibration predicted with, so its corrections do not apply.
        var service = options.ProfilePath is null ? calibration.ServiceModel() : null;
        if (service is not null) output.WriteLine(service.Describe());
        var initial = DemoPlanning.InitialPlan(cluster, card, coefficients, workload.Types, options.WindowS, service);
        output.WriteLine($"initial plan (the planner's, for the first window): {PlanText.Replicas(initial)}; routing {PlanText.Routing(initial)}");
        var controllerOptions = new ControllerOptions
        {
            Cluster = cluster, Model = card, Coefficients = coefficients, ServiceModel = service, WindowS = options.WindowS, Planner = DemoPlanning.Solver,
            Constraints = DemoPlanning.ConstraintsFor(cluster), ForecastLeadWindows = DemoPlanning.ForecastLeadWindows,
            SurgeChecksPerWindow = DemoPlanning.SurgeChecksPerWindow,
        };
        var deployments = new (string Name, Plan Plan, ControllerOptions? Controller)[]
        {
            (RunResult.Adaptive, initial, controllerOptions),
            ("static " + DemoShapes.Tp2, DemoShapes.PlanOf(DemoShapes.Tp2, cluster, card.Name, workload.Types), null),
            ("static " + DemoShapes.TwoTp1, DemoShapes.PlanOf(DemoShapes.TwoTp1, cluster, card.Name, workload.Types), null),
        };

        var runs = new List<RunResult>();
        using (var trace = new TraceFile(workload, "oserve-demo"))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"--- replays: {deployments.Length} deployments x {options.Repeats}, interleaved, {options.DurationS:F0} s each; the controller replans every {options.WindowS:F1} s in the adaptive one ---"));
            if (options.WarmUpReplayS > 0)
                await WarmUpReplayAsync(model, settings, cluster, deployments[0].Plan, shapes, rates, options, deployments[0].Controller, output, cancellationToken);
            for (int r = 1; r <= options.Repeats; r++)
                foreach (var (name, plan, controller) in deployments)
                    runs.Add(await DemoReplay.RunAsync(name, r, model, settings, cluster, plan, trace.Path, options, controller, output, interactive, cancellationToken));
        }

        output.WriteLine("--- switches of the adaptive replays ---");
        foreach (var run in runs.Where(r => r.IsAdaptive))
            foreach (var line in SwitchExplainer.Explain(run, forecast => DemoPlanning.Candidates(controllerOptions, workload.Types, forecast)))
                output.WriteLine(line);
        var summary = new DemoSummary(runs);
        output.Write(summary.Render());
        if (options.PaperScale)
            await PaperScaleSection.RunAsync(options.RunCommand ?? throw new InvalidOperationException("DemoOptions.RunCommand: the paper-scale section needs a way to run `oserve compare`"),
                options.PaperScaleDurationS, output, cancellationToken);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"demo wall time: {wall.Elapsed.TotalSeconds:F0} s (shared machine: timings vary from run to run)"));
        return summary;
    }

    /// <summary>
    /// The workload's shape compressed into <see cref="DemoOptions.WarmUpReplayS"/> seconds, replayed
    /// over HTTP on the first deployment and not counted, so the first measured replay is not also
    /// the first to run the server, the load generator and the controller.
    /// </summary>
    private static async Task WarmUpReplayAsync(LoadedModel model, DemoRunSettings settings, Cluster cluster, Plan plan, DemoRequestShapes shapes,
        DemoRates rates, DemoOptions options, ControllerOptions? controller, TextWriter output, CancellationToken cancellationToken)
    {
        double durationS = Math.Max(options.WarmUpReplayS, 4 * options.WindowS);
        var workload = DemoWorkload.Build(shapes, rates, durationS, options.WindowS, options.Seed + 1);
        using var trace = new TraceFile(workload, "oserve-demo-warmup");
        var watch = Stopwatch.StartNew();
        var run = await DemoReplay.RunAsync("warm-up", 0, model, settings, cluster, plan, trace.Path, options with { DurationS = durationS }, controller,
            TextWriter.Null, interactive: false, cancellationToken);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"warm-up replay (not counted; the first measured replay would otherwise be the process's first over HTTP): {run.Accounting.Describe()} in {watch.Elapsed.TotalSeconds:F1} s"));
        if (!run.Accounting.Ok)
            throw new InvalidOperationException("the warm-up replay lost or duplicated requests: " + run.Accounting.Describe());
    }

    /// <summary>A workload written as an Azure-format trace in the temp folder for the load generator, deleted on dispose.</summary>
    private sealed class TraceFile : IDisposable
    {
        public TraceFile(DemoWorkload workload, string prefix)
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"{prefix}-{Environment.ProcessId}-{Guid.NewGuid():N}.csv");
            workload.WriteAzureCsv(Path);
        }

        public string Path { get; }

        public void Dispose() => File.Delete(Path);
    }
}
