using OServe.Contracts;
using OServe.Engine.Orchestration;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Orchestration;

/// <summary>A replica a switch builds serves a warm-up prompt of its own before it is routed to, and that prompt is nobody's.</summary>
public sealed class WarmUpTests
{
    [Fact]
    public async Task A_built_replica_warms_up_before_the_commit_and_its_tokens_are_not_counted_as_served()
    {
        using var model = TinyModel();
        const int warmUpTokens = 40;
        await using var runtime = Start(model, TwoReplicas(), Options() with { WarmUpPromptTokens = warmUpTokens });
        var before = runtime.Snapshot();

        var report = await runtime.ApplyAsync(OneReplica(2));

        Assert.Equal(SwitchOutcome.Applied, report.Outcome);
        var warm = Assert.Single(report.Events, e => e.Kind == SwitchStepKind.Start && e.Detail.Contains("warmed up", StringComparison.Ordinal));
        Assert.Equal("c", warm.Replica);
        Assert.True(warm.Seconds > 0, "the warm-up ran");
        var replica = Assert.Single(runtime.Replicas);
        var engine = replica.Engine.Snapshot();
        Assert.Equal(warmUpTokens, engine.PromptTokensTotal);
        Assert.True(engine.GenerationTokensTotal >= 1, "the warm-up decoded");
        var after = runtime.Snapshot();
        Assert.Equal((before.PromptTokensTotal, before.GenerationTokensTotal), (after.PromptTokensTotal, after.GenerationTokensTotal));
    }

    [Fact]
    public async Task Without_the_option_no_replica_is_warmed_up()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas());
        var report = await runtime.ApplyAsync(OneReplica(2));
        Assert.Equal(SwitchOutcome.Applied, report.Outcome);
        Assert.DoesNotContain(report.Events, e => e.Detail.Contains("warmed up", StringComparison.Ordinal));
        Assert.Equal(0, Assert.Single(runtime.Replicas).Engine.Snapshot().PromptTokensTotal);
    }
}
