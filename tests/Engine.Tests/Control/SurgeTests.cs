using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using Xunit;

namespace OServe.Engine.Tests.Control;

/// <summary>
/// A window closes early when a type's arrivals so far pass its forecast by several Poisson
/// deviations, so the controller re-plans on a surge instead of serving it on the old plan until
/// the window ends.
/// </summary>
public sealed class SurgeTests
{
    [Fact]
    public void A_count_is_a_surge_only_beyond_the_forecast_noise_and_the_minimum()
    {
        // Forecast 10/s, 0.5 s elapsed: 5 expected, sd sqrt 5 = 2.24; 3 sigmas -> more than 11.7.
        Assert.Equal(-1, PlanController.SurgeType([11], [10.0], 0.5, 3, 5));
        Assert.Equal(0, PlanController.SurgeType([12], [10.0], 0.5, 3, 5));
        // Nothing forecast: a trickle below the minimum is not a surge, the minimum is.
        Assert.Equal(-1, PlanController.SurgeType([4], [0.0], 0.25, 3, 5));
        Assert.Equal(0, PlanController.SurgeType([5], [0.0], 0.25, 3, 5));
        // The first surging type is named; a quiet one before it is skipped.
        Assert.Equal(1, PlanController.SurgeType([2, 40], [4.0, 2.0], 1.0, 3, 5));
        // Fewer arrivals than forecast is never a surge.
        Assert.Equal(-1, PlanController.SurgeType([50], [100.0], 1.0, 3, 5));
    }

    [Theory]
    [InlineData(-1, 3.0, 5, "surge checks")]
    [InlineData(101, 3.0, 5, "surge checks")]
    [InlineData(4, 0.0, 5, "surge sigmas")]
    [InlineData(4, 3.0, 0, "surge min arrivals")]
    public void Bad_surge_options_are_refused_by_name(int checks, double sigmas, int minArrivals, string field)
    {
        var options = Options(checks) with { SurgeSigmas = sigmas, SurgeMinArrivals = minArrivals };
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public async Task A_surge_closes_the_window_long_before_its_end_and_is_logged()
    {
        var (controller, recorder) = Start(Options(surgeChecks: 20));
        await controller.StepAsync(10, CancellationToken.None); // a quiet first window: forecast ~0.1 chat/s
        using var stop = new CancellationTokenSource();
        var loop = controller.RunAsync(stop.Token);
        for (int i = 0; i < 30; i++) recorder.Record(250, 260);

        // Checked every 0.5 s of a 10 s window: the surge shows at the first check.
        var deadline = DateTime.UtcNow.AddSeconds(8);
        while (DateTime.UtcNow < deadline && controller.Log.OfType<ForecastEvent>().Count < 2)
            await Task.Delay(50);
        await stop.CancelAsync();
        await loop;

        var surge = Assert.Single(controller.Log.OfType<SurgeEvent>());
        Assert.Equal("chat", surge.TypeName);
        Assert.Equal(30, surge.Count);
        var closed = controller.Log.OfType<ForecastEvent>()[1];
        Assert.True(closed.Observed[0] > 3, $"the early window saw 30 chats in under 8 s, observed {closed.Observed[0]:F2}/s");
    }

    [Fact]
    public async Task Without_surge_checks_a_window_runs_its_length()
    {
        var (controller, recorder) = Start(Options(surgeChecks: 0));
        await controller.StepAsync(10, CancellationToken.None);
        using var stop = new CancellationTokenSource();
        var loop = controller.RunAsync(stop.Token);
        for (int i = 0; i < 30; i++) recorder.Record(250, 260);
        await Task.Delay(1500); // well inside the 10 s window
        await stop.CancelAsync();
        await loop;
        Assert.Single(controller.Log.OfType<ForecastEvent>());
        Assert.Empty(controller.Log.OfType<SurgeEvent>());
    }

    private static readonly RequestTypeSpec[] Types =
    [
        new() { Name = "chat", InputTokens = 256, OutputTokens = 256, RateRps = 0.1 },
        new() { Name = "long", InputTokens = 3000, OutputTokens = 32, RateRps = 0.1 },
    ];

    private static ControllerOptions Options(int surgeChecks) => new()
    {
        Cluster = new Cluster
        {
            Name = "test-2xh100",
            GpuTypes = [new GpuType { Name = "H100-80GB", MemoryGib = 80, Tflops = 989, HbmGbps = 3350 }],
            Nodes = [new Node { Name = "node0", GpuType = "H100-80GB", Gpus = 2, IntraLinkGbps = 400 }],
            InterNodeLinkGbps = 400,
            StorageReadGbps = 2,
        },
        Model = new ModelCard { Name = "Llama-2-7B", Layers = 32, Hidden = 4096, Intermediate = 11008, Heads = 32, KvHeads = 32, Vocab = 32000, MaxContext = 4096 },
        Coefficients = CostCoefficientsModule.defaults,
        WindowS = 10,
        SurgeChecksPerWindow = surgeChecks,
    };

    private sealed class Target(Plan initial) : IPlanTarget
    {
        public Plan Current { get; private set; } = initial;

        public Task<PlanSwitchResult> ApplyAsync(Plan next, CancellationToken cancellationToken)
        {
            Current = next;
            return Task.FromResult(new PlanSwitchResult(true, 0.01, "fake"));
        }
    }

    private sealed class LastRate : IRateForecaster
    {
        public double Next(IReadOnlyList<double> history) => history[^1];
    }

    private static (PlanController Controller, ArrivalRecorder Recorder) Start(ControllerOptions options)
    {
        var result = Planning.plan(new PlanRequest(options.Cluster, options.Model, Types) { NumWorkers = 1 });
        Assert.True(result.IsOk, result.IsOk ? "" : string.Join("; ", result.ErrorValue));
        var plan = result.ResultValue.Plan;
        var recorder = new ArrivalRecorder(plan.RequestTypes);
        recorder.Record(250, 260); // one chat in the first window
        return (new PlanController(new Target(plan), options, recorder, new ControllerLog(), new LastRate()), recorder);
    }
}
