using Xunit;
using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;

namespace OServe.Engine.Tests.Control;

public sealed class PlanControllerTests
{
    // Four H100s and a 7B model: the planner's choice moves between few large replicas (latency)
    // and many small ones (throughput) as demand grows, which is what these tests drive.
    private static Cluster Cluster(double linkGbps = 400, double storageGbps = 2) => new()
    {
        Name = "test-4xh100",
        GpuTypes = [new GpuType { Name = "H100-80GB", MemoryGib = 80, Tflops = 989, HbmGbps = 3350 }],
        Nodes = [new Node { Name = "node0", GpuType = "H100-80GB", Gpus = 4, IntraLinkGbps = linkGbps }],
        InterNodeLinkGbps = linkGbps,
        StorageReadGbps = storageGbps,
    };

    private static ModelCard Llama7B => new()
    {
        Name = "Llama-2-7B", Layers = 32, Hidden = 4096, Intermediate = 11008, Heads = 32, KvHeads = 32, Vocab = 32000, MaxContext = 4096,
    };

    private static readonly RequestTypeSpec[] Types =
    [
        new() { Name = "chat", InputTokens = 256, OutputTokens = 256 },
        new() { Name = "long", InputTokens = 3000, OutputTokens = 32 },
    ];

    private static ControllerOptions Options(Cluster cluster, double windowS = 60) => new()
    {
        Cluster = cluster, Model = Llama7B, Coefficients = CostCoefficientsModule.defaults, WindowS = windowS,
    };

    /// <summary>The planner's cold-start plan for the given rates (what a real start would run).</summary>
    private static Plan InitialPlan(Cluster cluster, double chatRps, double longRps)
    {
        var types = new[] { Types[0] with { RateRps = chatRps }, Types[1] with { RateRps = longRps } };
        var result = Planning.plan(new PlanRequest(cluster, Llama7B, types) { NumWorkers = 1 });
        Assert.True(result.IsOk, result.IsOk ? "" : string.Join("; ", result.ErrorValue));
        return result.ResultValue.Plan;
    }

    private sealed class FakeTarget(Plan initial) : IPlanTarget
    {
        public Plan Current { get; private set; } = initial;
        public List<Plan> Applied { get; } = [];

        public Task<PlanSwitchResult> ApplyAsync(Plan next, CancellationToken cancellationToken)
        {
            Applied.Add(next);
            Current = next;
            return Task.FromResult(new PlanSwitchResult(true, 0.01, "fake"));
        }
    }

    /// <summary>Forecasts from each history with <paramref name="next"/>.</summary>
    private sealed class FixedForecaster(Func<IReadOnlyList<double>, double> next) : IRateForecaster
    {
        public double Next(IReadOnlyList<double> history) => next(history);
    }

    /// <summary>Forecasts the given rate per type (the controller asks type by type, in plan order).</summary>
    private sealed class PerTypeForecaster(params double[] rates) : IRateForecaster
    {
        private int _calls;
        public double Next(IReadOnlyList<double> history) => rates[_calls++ % rates.Length];
    }

    private static void Arrive(ArrivalRecorder recorder, int numChat, int numLong)
    {
        for (var i = 0; i < numChat; i++) recorder.Record(250, 260);
        for (var i = 0; i < numLong; i++) recorder.Record(3100, 30);
    }

    [Fact]
    public async Task Records_the_rate_of_each_type_per_window()
    {
        var plan = InitialPlan(Cluster(), 0.5, 0.1);
        var recorder = new ArrivalRecorder(plan.RequestTypes);
        var controller = new PlanController(new FakeTarget(plan), Options(Cluster()), recorder, new ControllerLog(), new FixedForecaster(h => h[^1]));

        Arrive(recorder, numChat: 3, numLong: 6);
        await controller.StepAsync(2.0, CancellationToken.None);
        Arrive(recorder, numChat: 2, numLong: 0);
        await controller.StepAsync(4.0, CancellationToken.None);

        Assert.Equal([1.5, 0.5], controller.History[0]);
        Assert.Equal([3.0, 0.0], controller.History[1]);
        var forecasts = controller.Log.OfType<ForecastEvent>();
        Assert.Equal(2, forecasts.Count);
        Assert.Equal([0.5, 0.0], forecasts[1].Observed);
        Assert.Equal(["chat", "long"], forecasts[1].TypeNames);
    }

    [Fact]
    public async Task Switches_when_demand_shifts_enough_for_the_gain_to_pay()
    {
        var cluster = Cluster();
        var target = new FakeTarget(InitialPlan(cluster, 0.5, 0.1));
        var before = target.Current;
        Assert.Single(before.Replicas); // one TP=4 replica serves light traffic with the least latency
        var controller = new PlanController(target, Options(cluster, windowS: 60), new ArrivalRecorder(before.RequestTypes), new ControllerLog(),
            new PerTypeForecaster(100, 0)); // chat forecast 100 req/s, long 0

        var decision = await controller.StepAsync(60, CancellationToken.None);

        Assert.Equal(SwitchDecisionKind.Switch, decision);
        var applied = Assert.Single(target.Applied);
        Assert.False(PlanController.SameReplicas(before, applied));
        Assert.True(applied.Replicas.Count > 1, PlanText.Replicas(applied)); // many small replicas for throughput
        Assert.Equal(before.Version + 1, applied.Version);
        Assert.Equal(1, controller.NumSwitches);
        var verdict = Assert.Single(controller.Log.OfType<SwitchDecisionEvent>());
        Assert.Contains("more requests over the window", verdict.Reason);
        Assert.True(verdict.EstSeconds > 0);
        Assert.Single(controller.Log.OfType<SwitchResultEvent>(), e => e.Result.Applied);
    }

    [Fact]
    public async Task Keeps_the_replicas_when_the_gain_over_a_short_window_does_not_pay_for_the_switch()
    {
        // Same shift as above, but over a 2 s window the extra requests served (~60) do not cover
        // those lost while the replica is rebuilt (~130 over the ~1.8 s switch).
        var cluster = Cluster();
        var target = new FakeTarget(InitialPlan(cluster, 0.5, 0.1));
        var before = target.Current;
        var controller = new PlanController(target, Options(cluster, windowS: 2), new ArrivalRecorder(before.RequestTypes), new ControllerLog(),
            new PerTypeForecaster(100, 0));

        var decision = await controller.StepAsync(2, CancellationToken.None);

        Assert.NotEqual(SwitchDecisionKind.Switch, decision);
        Assert.All(target.Applied, p => Assert.True(PlanController.SameReplicas(before, p)));
        Assert.Equal(0, controller.NumSwitches);
        Assert.Contains("keep the current plan", Assert.Single(controller.Log.OfType<SwitchDecisionEvent>()).Reason);
    }

    [Fact]
    public async Task Keeps_the_plan_untouched_when_demand_does_not_move()
    {
        var cluster = Cluster();
        var target = new FakeTarget(InitialPlan(cluster, 0.5, 0.1));
        var controller = new PlanController(target, Options(cluster), new ArrivalRecorder(target.Current.RequestTypes), new ControllerLog(),
            new PerTypeForecaster(0.5, 0.1));

        Assert.Equal(SwitchDecisionKind.Keep, await controller.StepAsync(60, CancellationToken.None));
        Assert.Empty(target.Applied);
    }

    [Fact]
    public async Task Skips_planning_when_nothing_is_forecast()
    {
        var cluster = Cluster();
        var target = new FakeTarget(InitialPlan(cluster, 0.5, 0.1));
        var controller = new PlanController(target, Options(cluster), new ArrivalRecorder(target.Current.RequestTypes), new ControllerLog(), new FixedForecaster(_ => 0));

        Assert.Equal(SwitchDecisionKind.Skip, await controller.StepAsync(60, CancellationToken.None));
        Assert.Empty(target.Applied);
        Assert.Empty(controller.Log.OfType<PlanEvent>());
    }

    [Fact]
    public void Types_requests_by_the_nearest_plan_type_in_log_length()
    {
        var recorder = new ArrivalRecorder(Types);
        Assert.Equal(0, recorder.Classify(200, 300));
        Assert.Equal(1, recorder.Classify(2500, 20));
        recorder.Record(200, 300);
        recorder.Record(2500, 20);
        recorder.Record(2500, 20);
        Assert.Equal([1L, 2L], recorder.TakeCounts());
        Assert.Equal([0L, 0L], recorder.TakeCounts());
    }

    [Fact]
    public void Routing_within_tolerance_is_the_same_routing()
    {
        var plan = InitialPlan(Cluster(), 0.5, 0.1);
        Assert.True(PlanController.SameRouting(plan, plan, 0.05));
        var moved = plan with
        {
            Routing = [.. plan.Routing.Select(r => r with { Weights = r.Weights.ToDictionary(kv => kv.Key, kv => kv.Value * 2) })],
        };
        Assert.True(PlanController.SameRouting(plan, moved, 0.05)); // weights are relative
        var elsewhere = plan with { Routing = [new RoutingEntry { Type = "chat", Weights = new Dictionary<string, double> { ["other"] = 1 } }] };
        Assert.False(PlanController.SameRouting(plan, elsewhere, 0.05));
    }
}
