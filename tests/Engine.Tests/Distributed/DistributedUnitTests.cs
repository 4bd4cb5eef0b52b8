using OServe.Contracts;
using OServe.Engine.Cli;
using OServe.Engine.Distributed;
using Xunit;
using static OServe.Engine.Tests.Distributed.ClusterServingTests;

namespace OServe.Engine.Tests.Distributed;

/// <summary>The distributed runtime's pure parts: membership options, degraded plans, cluster plan rules, the drill's verdicts, the CLI's refusals.</summary>
public sealed class DistributedUnitTests
{
    [Theory]
    [InlineData("localhost", MembershipKind.Localhost, null)]
    [InlineData("redis://127.0.0.1:6379", MembershipKind.Redis, "127.0.0.1:6379")]
    [InlineData("redis://redis.internal:6380,password=x", MembershipKind.Redis, "redis.internal:6380,password=x")]
    public void Membership_options_parse(string text, MembershipKind kind, string? redis)
    {
        var spec = MembershipSpec.Parse(text);
        Assert.Equal(kind, spec.Kind);
        Assert.Equal(redis, spec.RedisConfiguration);
    }

    [Theory]
    [InlineData("zookeeper://x:1")]
    [InlineData("redis://")]
    [InlineData("redis://host")]
    [InlineData("redis://host:99999")]
    public void Bad_membership_options_name_the_option(string text)
    {
        var error = Assert.Throws<ArgumentException>(() => MembershipSpec.Parse(text));
        Assert.StartsWith("--membership:", error.Message);
    }

    [Fact]
    public void A_dead_workers_replicas_leave_the_plan_and_their_types_go_to_the_replicas_left()
    {
        var plan = PlanOf("c", 3, Replica("a", "node0/0"), Replica("b", "node1/0"), Replica("c", "node2/0")) with
        {
            Routing =
            [
                new RoutingEntry { Type = "short", Weights = new Dictionary<string, double> { ["a"] = 2, ["b"] = 1 } },
                new RoutingEntry { Type = "long", Weights = new Dictionary<string, double> { ["c"] = 1 } },
            ],
        };
        var restricted = PlanRestriction.Restrict(plan, new HashSet<string> { "a", "b" }, version: 7)!;
        Assert.Equal(7, restricted.Version);
        Assert.Equal(["a", "b"], restricted.Replicas.Select(r => r.Id));
        Assert.Equal(new Dictionary<string, double> { ["a"] = 2, ["b"] = 1 }, restricted.Routing.Single(r => r.Type == "short").Weights);
        // "long" lost its only replica: it goes where the load already goes, in the same proportion.
        Assert.Equal(new Dictionary<string, double> { ["a"] = 2, ["b"] = 1 }, restricted.Routing.Single(r => r.Type == "long").Weights);
        Assert.Null(PlanRestriction.Restrict(plan, new HashSet<string>(), 8));
        Assert.True(PlanRestriction.SameDeployment(plan, plan with { Version = 9 }));
        Assert.False(PlanRestriction.SameDeployment(plan, restricted));
    }

    [Fact]
    public void Pipeline_stages_on_two_workers_are_accepted_and_a_stage_across_two_is_refused_with_its_devices_named()
    {
        using var model = LocalCluster.TinyModel();
        var hardware = new Cluster
        {
            Name = "c", GpuTypes = [new GpuType { Name = "cpu-logical", MemoryGib = 4, Tflops = 0.1, HbmGbps = 20 }],
            Nodes = [new Node { Name = "node0", GpuType = "cpu-logical", Gpus = 1, IntraLinkGbps = 10 }, new Node { Name = "node1", GpuType = "cpu-logical", Gpus = 1, IntraLinkGbps = 10 }],
            InterNodeLinkGbps = 1,
        };
        var card = OServe.Engine.Orchestration.ModelCardOf.Llama(model.Config, LocalCluster.ModelName, model.Model.DType);
        // Pipeline stages on two nodes: the first worker runs the engine, the activations pass to the second.
        var split = PlanOf("c", 1, Replica("split", "node0/0", "node1/0") with { Tp = 1, Pp = 2 });
        Assert.Empty(ClusterPlanChecks.Validate(split, hardware, card, model.Config));
        Assert.Equal([("node0", new OServe.Models.Parallelism.IndexRange(0, 1)), ("node1", new OServe.Models.Parallelism.IndexRange(1, 1))],
            ReplicaShape.Of(split.Replicas[0]).StageRuns(out _));
        // A stage's tp ranks on two nodes: its all-reduce would cross workers.
        var across = PlanOf("c", 1, Replica("across", "node0/0", "node1/0"));
        var error = Assert.Single(ClusterPlanChecks.Validate(across, hardware, card, model.Config));
        Assert.Equal("replicas[0].devices", error.Field);
        Assert.Contains("pipeline stage 0 spans nodes node0, node1", error.Message);
        Assert.Null(ReplicaShape.Of(across.Replicas[0]).StageRuns(out var why));
        Assert.Contains("stage 0 has its tp ranks on nodes node0 and node1", why);
    }

    private static DrillTrace Trace(int tokens, double sentAt, params double[] times) =>
        new(true, times.Length, tokens, "length", null, times) { SentAt = sentAt };

    [Fact]
    public void The_drill_counts_completed_failed_and_duplicated_requests_and_measures_recovery_from_the_kill()
    {
        var traces = new[]
        {
            Trace(3, 0, 1, 2, 3),                                       // untouched
            Trace(3, 0, 1, 2, 9.5),                                     // interrupted at 5, resumed at 9.5
            Trace(3, 4.8, 7, 8, 8.5),                                   // sent before the kill, first token 2.2 s after the send
            Trace(4, 0, 1, 2, 3, 4),                                    // one token too many: duplicated
            new DrillTrace(false, 1, null, null, "HTTP 500: boom", [1]) { SentAt = 0 }, // failed
            Trace(2, 0, 1, 2),                                          // fewer tokens than asked: failed
        };
        var result = DrillLoad.Summarize(3, traces, killedAt: 5);
        Assert.Equal((6, 3, 2, 1), (result.Sent, result.Completed, result.Failed, result.Duplicated));
        Assert.Equal(4.5, result.RecoverySeconds, 6);
        Assert.Equal(2, result.NumStalled);
        Assert.Equal(7.5, result.LongestStallSeconds, 6);
        Assert.False(result.Passed);
        Assert.Equal("sent 6, completed 3, failed 2, duplicated 1, recovered in 4.5 s", result.Line);
        Assert.True(DrillLoad.Summarize(3, traces[..3], null).Passed);
    }

    [Fact]
    public void The_drill_measures_the_pause_that_comes_after_tokens_already_on_their_way_at_the_kill()
    {
        // What a real run looks like (the measure of "the first token after the kill" printed 0.1-0.2 s
        // for pauses of 5-9 s): the killed worker's last tokens still reach the client just after the kill,
        // then the stream pauses until the front end resumes it elsewhere; a request sent after the kill
        // but routed to the dead worker (not yet declared dead) waits from its send.
        double kill = 1000;
        var traces = new[]
        {
            Trace(4, 990, 999.7, 999.9, 1000.05, 1006.4),                 // 0.05 s after the kill, then a 6.35 s pause
            Trace(4, 990, 999.8, 1000.1, 1000.2, 1000.3),                 // on a live worker: no pause
            Trace(3, 1001, 1008.9, 1009.0, 1009.1),                       // sent after the kill to the dead worker: 7.9 s to its first token
            Trace(3, 1010, 1010.5, 1010.6, 1010.7),                       // after the recovery: no pause
        };
        var result = DrillLoad.Summarize(4, traces, kill);
        Assert.Equal(8.9, result.RecoverySeconds, 6);
        Assert.Equal(2, result.NumStalled);
        Assert.Equal(7.9, result.LongestStallSeconds, 6);
        Assert.EndsWith("recovered in 8.9 s", result.Line);
        // A stall threshold above every pause: nothing stalled, nothing to recover from.
        Assert.Equal(0, DrillLoad.Summarize(4, traces, kill, stallSeconds: 10).RecoverySeconds);
    }

    [Theory]
    [InlineData("worker --node node9 --cluster cpu-3node", "--node: cluster 'cpu-3node' has no node 'node9'")]
    [InlineData("worker --node node0 --cluster cpu-3node --membership etcd://x", "--membership: 'etcd://x' is not 'localhost' or 'redis://HOST:PORT'")]
    [InlineData("worker --node node0 --cluster cpu-3node --in-flight teleport", "--in-flight: 'teleport' is not one of: migrate, drain")]
    [InlineData("worker --node node0 --cluster cpu-3node --finish-in-place-steps -1", "--finish-in-place-steps: must be 0 or more, got -1")]
    [InlineData("serve --membership localhost", "--membership: serving across workers needs --plan")]
    [InlineData("drill-load --requests 0", "--requests: must be at least 1, got 0")]
    public async Task Bad_cluster_options_exit_2_naming_the_option(string args, string message)
    {
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(args.Split(' '), new StringWriter(), error);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains(message, error.ToString());
    }
}
