using OServe.Contracts;
using OServe.Engine.Orchestration;
using OServe.Engine.Scheduling;
using OServe.Engine.Serving;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Orchestration;

public sealed class RoutingTests
{
    private sealed class Counter(string id)
    {
        public string Id { get; } = id;
        public int Load;
    }

    [Fact]
    public void Requests_that_never_finish_are_shared_in_proportion_to_the_plan_weights()
    {
        var plan = TwoReplicas() with
        {
            Routing =
            [
                new RoutingEntry { Type = "short", Weights = new Dictionary<string, double> { ["a"] = 3, ["b"] = 1 } },
                new RoutingEntry { Type = "long", Weights = new Dictionary<string, double> { ["b"] = 1 } },
            ],
        };
        var replicas = new Dictionary<string, Counter> { ["a"] = new("a"), ["b"] = new("b") };
        var policy = new RoutingPolicy<Counter>(plan, id => replicas[id], r => r.Load);

        for (int i = 0; i < 400; i++)
            policy.Route(inputTokens: 10, outputTokens: 12).Load++;
        Assert.Equal((300, 100), (replicas["a"].Load, replicas["b"].Load));

        Assert.Equal(1, policy.Classify(180, 100));
        for (int i = 0; i < 50; i++)
            Assert.Same(replicas["b"], policy.Route(180, 100)); // long goes only to b, however loaded
    }

    [Fact]
    public async Task The_runtime_types_each_request_and_sends_it_to_the_replicas_its_type_is_routed_to()
    {
        using var model = TinyModel();
        var plan = TwoReplicas() with
        {
            Routing =
            [
                new RoutingEntry { Type = "short", Weights = new Dictionary<string, double> { ["a"] = 1 } },
                new RoutingEntry { Type = "long", Weights = new Dictionary<string, double> { ["b"] = 1 } },
            ],
        };
        await using var runtime = Start(model, plan);
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app) };

        var shortOnes = Enumerable.Range(0, 6).Select(i => StreamAsync(http, $"hi {i}", 12));
        var longOnes = Enumerable.Range(0, 4).Select(i => StreamAsync(http, string.Join(' ', Enumerable.Repeat($"word{i}", 150)), 120));
        await Task.WhenAll(shortOnes.Concat(longOnes));

        Assert.Equal((6L, 4L), (runtime.Replicas[0].NumFinished, runtime.Replicas[1].NumFinished));
        Assert.Equal(0, runtime.Classify(3, 12));
        Assert.Equal(1, runtime.Classify(300, 120));
    }

    [Fact]
    public void The_model_card_is_derived_from_the_served_config_and_validates_the_test_plans()
    {
        using var model = TinyModel();
        var card = ModelCardOf.Llama(model.Config, ModelName, model.Model.DType);
        Assert.Equal((2, 64, 160, 4, 2, model.Config.VocabSize, 4), (card.Layers, card.Hidden, card.Intermediate, card.Heads, card.KvHeads, card.Vocab, card.DtypeBytes));
        Assert.Equal(model.Config.ParameterCount, card.ParamCount);
        Assert.Empty(PlanChecks.Validate(TwoReplicas(), LogicalCluster, card));
        Assert.Empty(PlanChecks.Validate(OneReplica(), LogicalCluster, card));
    }
}
