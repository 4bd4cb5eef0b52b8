using OServe.Engine.Distributed;
using Xunit;
using static OServe.Engine.Tests.Distributed.ClusterServingTests;

namespace OServe.Engine.Tests.Distributed;

/// <summary>Plans that move across workers, and a plan that outlives the front end: in Orleans' localhost membership, then in Redis.</summary>
public sealed class ClusterSwitchTests
{
    [Fact]
    public async Task A_switch_to_another_worker_copies_the_weights_from_the_worker_that_holds_them_then_frees_the_old_replica()
    {
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"],
            controller: new ControllerSettings { UnloadGrace = TimeSpan.FromMilliseconds(200) });
        await using var frontEnd = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, Replica("a", "node0/0")));
        await LocalCluster.WaitForReplicasAsync(frontEnd, "a");

        var report = await frontEnd.ApplyAsync(PlanOf(cluster.ClusterId, 2, Replica("b", "node1/0")));
        Assert.True(report.Applied, report.Error);
        var load = Assert.Single(report.Loaded);
        Assert.Equal("worker node0", load.Origin);
        Assert.True(load.BytesFromPeerWorker > 0, "the new replica's weights came over the network from node0");
        Assert.Equal(["b"], frontEnd.Current!.Replicas.Select(r => r.Id));

        var request = Greedy("moved", 3, 12);
        Assert.Equal((await ReferenceAsync([request]))[0], await TokensAsync(frontEnd, request));
        // Make-before-break done: after the grace period node0 holds nothing.
        await LocalCluster.WaitForAsync(frontEnd, f => f.Workers.Any(w => w.Node == "node0" && w.Replicas.Length == 0), "node0's replica to be unloaded");
    }

    [SkippableFact]
    public async Task With_redis_membership_workers_serve_and_a_restarted_front_end_keeps_the_clusters_plan()
    {
        var (redis, whyNot) = await RedisServer.TryStartAsync();
        Skip.If(redis is null, $"Redis is not available here: {whyNot}");
        using var _ = redis;
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"], membership: MembershipSpec.Redis(redis!.Configuration));
        var first = PlanOf(cluster.ClusterId, 1, Replica("r0", "node0/0"), Replica("r1", "node1/0"));
        await using (var frontEnd = await cluster.FrontEndAsync(first))
        {
            await LocalCluster.WaitForReplicasAsync(frontEnd, "r0", "r1");
            var request = Greedy("redis", 5, 10);
            Assert.Equal((await ReferenceAsync([request]))[0], await TokensAsync(frontEnd, request));
        }

        // A new front end comes with another plan: the cluster's (persisted in Redis by the controller) wins.
        await using var restarted = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 5, Replica("other", "node1/1")));
        Assert.Equal(["r0", "r1"], restarted.Current!.Replicas.Select(r => r.Id));
        Assert.Contains("r0", restarted.View.TargetYaml);
        // Where it is kept: the controller's grain state, in the Redis server that also holds membership.
        using var connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var keys = connection.GetServer(redis.Configuration).Keys(pattern: $"*clustercontroller*{cluster.ClusterId}*").ToArray();
        Assert.NotEmpty(keys);
    }
}
