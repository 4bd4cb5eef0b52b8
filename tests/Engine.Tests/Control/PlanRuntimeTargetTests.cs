using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using OServe.Planner.CostModel;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Control;

/// <summary>The controller driving the real multi-replica engine through <see cref="PlanRuntimeTarget"/>.</summary>
public sealed class PlanRuntimeTargetTests
{
    /// <summary>Forecasts the given rate per type (the controller asks type by type, in plan order).</summary>
    private sealed class PerTypeForecaster(params double[] rates) : IRateForecaster
    {
        private int _calls;
        public double Next(IReadOnlyList<double> history) => rates[_calls++ % rates.Length];
    }

    private static ControllerOptions Options(PlanRuntime runtime) => new()
    {
        Cluster = LogicalCluster, Model = runtime.ModelCard, Coefficients = CostCoefficientsModule.defaults, WindowS = 60,
        Constraints = [OServe.Planner.Solver.Constraints.maxParallelism(1)],
    };

    [Fact]
    public async Task A_planner_switch_is_applied_mid_replay_and_every_streamed_request_completes_once()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas());
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app), Timeout = TimeSpan.FromMinutes(2) };
        var log = new ControllerLog();
        // Demand far above what two of the four devices serve: the planner's own answer is to grow.
        var controller = new PlanController(new PlanRuntimeTarget(runtime), Options(runtime), new ArrivalRecorder(runtime.Current.RequestTypes), log,
            new PerTypeForecaster(400, 100));

        var sent = new List<(int MaxTokens, Task<Streamed> Result)>();
        var started = new List<Task>();
        for (int i = 0; i < 8; i++)
        {
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            sent.Add((64, StreamAsync(http, Prompt(i), 64, first)));
            started.Add(first.Task);
        }
        await Task.WhenAll(started).WaitAsync(TimeSpan.FromSeconds(60));

        var kind = await controller.StepAsync(60, CancellationToken.None);
        for (int i = 8; i < 12; i++) sent.Add((16, StreamAsync(http, Prompt(i), 16)));
        var results = await Task.WhenAll(sent.Select(s => s.Result));

        var switchResult = Assert.Single(log.OfType<SwitchResultEvent>());
        Assert.Equal(SwitchDecisionKind.Switch, kind);
        Assert.True(switchResult.Result.Applied, switchResult.Describe());
        Assert.Equal(2, runtime.Current.Version);
        Assert.True(runtime.Replicas.Count > 2, $"the planner grew the deployment: {PlanText.Replicas(runtime.Current)}");
        Assert.All(runtime.Current.Replicas, r => Assert.Equal((1, 1), (r.Tp, r.Pp)));
        Assert.Contains("started", switchResult.Result.Detail);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.Equal(["length"], results[i].FinishReasons);
            Assert.Equal(1, results[i].NumDone);
            Assert.Equal(sent[i].MaxTokens, results[i].NumChunks);
        }
        Assert.All(runtime.Replicas, r => Assert.Equal(0, r.Outstanding));
    }

    [Fact]
    public async Task A_plan_the_runtime_refuses_is_reported_as_not_applied_and_the_old_plan_keeps_serving()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas());
        // tp 3 cannot split the model's heads, so the runtime refuses the plan.
        var tp3 = OneReplica() with { Replicas = [Replica("t", "node0/1", "node0/2", "node0/3")], Routing =
        [
            new RoutingEntry { Type = "short", Weights = new Dictionary<string, double> { ["t"] = 1 } },
            new RoutingEntry { Type = "long", Weights = new Dictionary<string, double> { ["t"] = 1 } },
        ] };

        var result = await new PlanRuntimeTarget(runtime).ApplyAsync(tp3, CancellationToken.None);

        Assert.False(result.Applied);
        Assert.Contains("refused by the runtime", result.Detail);
        Assert.Contains("replicas[0].tp", result.Detail);
        Assert.Equal(1, runtime.Current.Version);
    }
}
