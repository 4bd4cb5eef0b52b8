using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using Xunit;
using static OServe.Engine.Tests.Distributed.ClusterServingTests;

namespace OServe.Engine.Tests.Distributed;

/// <summary>A worker lost under load: Orleans declares it dead, its requests resume elsewhere, it comes back.</summary>
public sealed class ClusterFailureTests
{
    [Fact]
    public async Task A_worker_crashing_mid_stream_costs_no_request_and_no_repeated_token_and_rejoins()
    {
        // node0 holds the localhost membership table, so the crash is node1's.
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1", "node2"]);
        var plan = PlanOf(cluster.ClusterId, 1, Replica("r1", "node1/0"), Replica("r2", "node2/0"));
        await using var frontEnd = await cluster.FrontEndAsync(plan);
        await LocalCluster.WaitForReplicasAsync(frontEnd, "r1", "r2");
        int epochBefore = frontEnd.View.Epoch;

        const int maxTokens = 40;
        var requests = Enumerable.Range(0, 6).Select(i => Greedy($"k{i}", i, maxTokens)).ToArray();
        var streams = await StartStreamsAsync(frontEnd, requests, startedAfter: 3);
        Assert.True(frontEnd.Deployment!.Replicas.Single(r => r.Id == "r1").Outstanding > 0, "some requests must be on the worker that crashes");

        await cluster.CrashAsync("node1");
        var outputs = await Task.WhenAll(streams);

        // Every request completed, each with exactly max_tokens tokens, as the single-process engine would have produced them.
        Assert.All(outputs, o => Assert.Equal(maxTokens, o.Length));
        Assert.True(frontEnd.Counters.NumBreaks > 0, "the crash must have broken some streams");
        var reference = await ReferenceAsync(requests);
        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(reference[i], outputs[i]);

        // Membership declared node1 dead: the plan in force is r2 alone, on a later epoch.
        await LocalCluster.WaitForReplicasAsync(frontEnd, "r2");
        Assert.True(frontEnd.View.Epoch > epochBefore);
        Assert.DoesNotContain("node1", frontEnd.View.LiveNodes);

        // The worker comes back: its replica is rebuilt (weights from a peer) and the plan uses it again.
        await cluster.StartWorkerAsync("node1");
        await LocalCluster.WaitForReplicasAsync(frontEnd, "r1", "r2");
        var after = await TokensAsync(frontEnd, Greedy("after", 9, 8));
        Assert.Equal((await ReferenceAsync([Greedy("after", 9, 8)]))[0], after);
    }
}
