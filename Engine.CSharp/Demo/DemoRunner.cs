using System.Globalization;
using OServe.Contracts;
using ModelCard = OServe.Contracts.ModelCard;
using OServe.Engine.Benchmarking;
using OServe.Engine.Control;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using OServe.Models;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;

namespace OServe.Engine.Demo;

/// <summary>
/// `oserve demo` in-process: the built-in model served by a <see cref="PlanRuntime"/> on logical
/// CPU devices, the OpenAI server on 127.0.0.1, the built-in shifting workload replayed over real
/// HTTP streams by the benchmark's load generator, the controller forecasting and switching the
/// runtime live; then the same workload against the initial plan held fixed (a second runtime,
/// no controller), and a comparison of the two.
/// </summary>
public static class DemoRunner
{
    private static readonly EngineSettings Settings = new() { MaxNumSeqs = 32, MaxModelLen = 1024, KvCacheGib = 0.25 };
    private static readonly BuiltInModelOptions ModelOptions = new() { MaxSeqLen = 1024 };

    public static async Task<DemoSummary> RunAsync(DemoOptions options, TextWriter output, bool interactive, CancellationToken cancellationToken)
    {
        options.Validate();
        using var model = BuiltInModel.Create(ModelOptions with { Device = options.Device });
        output.WriteLine($"model: {model.Description}");
        var card = ModelCardOf.Llama(model.Config, model.Name, model.Model.DType);

        var calibration = await CalibrateAsync(model, card, cancellationToken);
        var coefficients = calibration.Coefficients;
        output.WriteLine($"calibration: {calibration.Describe()}");
        if (options.ProfilePath is { } profile)
        {
            var loaded = CostCoefficientsModule.load(profile);
            if (loaded.IsError) throw new ArgumentException(string.Join("; ", loaded.ErrorValue));
            coefficients = loaded.ResultValue;
            output.WriteLine($"coefficients from {profile} (device figures still measured here)");
        }
        if (options.ProfileOutPath is { } outPath)
        {
            CpuCostCalibration.WriteProfile(outPath, calibration);
            output.WriteLine($"profile written to {outPath}");
        }
        var cluster = CpuCostCalibration.Cluster(calibration, options.NumDevices, memoryGibPerDevice: 1.0);

        var workload = DemoWorkload.Build(options.DurationS, options.WindowS, options.RateScale, options.Seed);
        output.WriteLine($"workload: {workload.Description}");
        var plannerOptions = new PlannerOptions { MaxSolveSeconds = 1.0 };
        OServe.Planner.Solver.PlannerConstraint[] constraints = options.MaxParallelism is { } maxDegree ? [OServe.Planner.Solver.Constraints.maxParallelism(maxDegree)] : [];
        var initial = InitialPlan(cluster, card, coefficients, workload.Types, options.WindowS, plannerOptions, constraints);
        output.WriteLine($"initial plan: {PlanText.Replicas(initial)} on {cluster.Name}; routing {PlanText.Routing(initial)}");
        output.WriteLine($"  ({options.NumDevices} logical CPU devices sharing this machine's cores; each replica has its own weights and KV cache" +
            (options.MaxParallelism is { } max ? $"; planner limited to tp, pp <= {max} by --max-parallelism)" : ")"));

        var tracePath = Path.Combine(Path.GetTempPath(), $"oserve-demo-{Environment.ProcessId}-{Guid.NewGuid():N}.csv");
        workload.WriteAzureCsv(tracePath);
        try
        {
            var controllerOptions = new ControllerOptions
            {
                Cluster = cluster, Model = card, Coefficients = coefficients, WindowS = options.WindowS, Planner = plannerOptions, Constraints = constraints,
            };
            var (adaptive, log, final) = await ReplayAsync("adaptive", model, cluster, initial, tracePath, options, controllerOptions, output, interactive, cancellationToken);
            var (fixedRun, _, _) = await ReplayAsync("static", model, cluster, initial, tracePath, options, null, output, interactive, cancellationToken);
            return DemoSummary.From(adaptive, fixedRun, log!, initial, final) with { WhyNoChange = WhyNoChange(options, cluster) };
        }
        finally
        {
            File.Delete(tracePath);
        }
    }

    private static async Task<(BenchResult Result, ControllerLog? Log, Plan Final)> ReplayAsync(string phase, LoadedModel model, Cluster cluster, Plan initial,
        string tracePath, DemoOptions options, ControllerOptions? controllerOptions, TextWriter output, bool interactive, CancellationToken cancellationToken)
    {
        output.WriteLine($"--- {phase} run: {(controllerOptions is null ? "the initial plan held fixed" : $"controller replans every {options.WindowS:F1} s")} ---");
        await using var runtime = StartRuntime(model, cluster, initial,
            options.Device is { type: TorchSharp.DeviceType.CUDA } gpu ? OServe.Models.Parallelism.DevicePool.Shared(options.NumDevices, gpu, cluster.Nodes[0].Name) : null);
        var recorder = new ArrivalRecorder(initial.RequestTypes);
        IInferenceEngine served = controllerOptions is null ? runtime : new ArrivalObservingEngine(runtime, recorder);
        var log = controllerOptions is null ? null : new ControllerLog(interactive ? null : output);
        var progress = new BenchProgress();
        var view = new DemoLiveView(phase, options.DurationS, progress, () => PlanText.Replicas(runtime.Current) + "; " + PlanText.Routing(runtime.Current), log);
        runtime.RequestFinished += view.OnFinished;

        await using var app = ServerHost.Build(new ServeOptions { Host = "127.0.0.1", Port = 0 }, served,
            configure: b => b.Logging.SetMinimumLevel(LogLevel.Warning), engineClock: () => runtime.Clock.Now);
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
                RequestTimeout = TimeSpan.FromSeconds(Math.Max(60, options.DurationS * 2)),
            }, progress: progress, cancellationToken: cancellationToken);
            await view.RunAsync(output, interactive, bench);
            var result = await bench;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{phase}: {result.Completed}/{result.NumPrompts} completed in {result.Duration:F1} s, final plan {PlanText.Replicas(runtime.Current)}"));
            return (result, log, runtime.Current);
        }
        finally
        {
            await stopController.CancelAsync();
            await controlLoop;
            await app.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>
    /// When every replica the planner may place is one configuration on identical devices, its
    /// answer cannot depend on the mix: the solver's later stages use every device, and replicas of
    /// one configuration split each type evenly (Placement.route). Said in the summary, not hidden.
    /// </summary>
    private static string? WhyNoChange(DemoOptions options, Cluster cluster) =>
        options.MaxParallelism == 1 && cluster.GpuTypes.Count == 1
            ? $"with tp, pp <= 1 on {options.NumDevices} identical logical devices the planner has ONE replica configuration to choose from " +
              "(tp1 on one device); it puts one on every device and splits every request type evenly among them, whatever the mix, " +
              "so no window can change its answer. --max-parallelism 2 gives it tp/pp replicas to weigh."
            : null;

    /// <summary>The demo's engine: a plan runtime whose logical devices are this CPU; cold loads regenerate the built-in weights.</summary>
    public static PlanRuntime StartRuntime(LoadedModel model, Cluster cluster, Plan plan, OServe.Models.Parallelism.DevicePool? devices = null) =>
        PlanRuntime.Start(plan, cluster, model, new RandomWeightStore(model.Config, ModelOptions.Seed),
            new PlanRuntimeOptions { Engine = Settings, Logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance, Devices = devices });

    private static async Task<CpuCalibration> CalibrateAsync(LoadedModel model, ModelCard card, CancellationToken cancellationToken)
    {
        await using var engine = LocalEngineBuilder.Create(model, Settings);
        return await CpuCostCalibration.MeasureAsync(engine, card, Settings.MaxNumSeqs, cancellationToken);
    }

    private static Plan InitialPlan(Cluster cluster, ModelCard card, CostCoefficients k, IReadOnlyList<RequestTypeSpec> types, double windowS, PlannerOptions plannerOptions,
        OServe.Planner.Solver.PlannerConstraint[] constraints)
    {
        var result = Planning.plan(new PlanRequest(cluster, card, types)
        {
            Coefficients = k, NumWorkers = 1, WindowS = windowS, Options = plannerOptions, Constraints = constraints,
        });
        if (result.IsError) throw new InvalidOperationException("planning the demo's initial plan: " + string.Join("; ", result.ErrorValue));
        return result.ResultValue.Plan;
    }
}
