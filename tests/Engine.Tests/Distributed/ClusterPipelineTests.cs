using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using Xunit;
using static OServe.Engine.Tests.Distributed.ClusterServingTests;

namespace OServe.Engine.Tests.Distributed;

/// <summary>
/// Replicas whose pipeline stages are on two workers: the first runs the engine and its stages,
/// and each step's activations go to the other worker and its logits come back.
/// </summary>
public sealed class ClusterPipelineTests
{
    /// <summary>Seeded sampling at temperature 1: the tokens follow the logits closely, so activations that went astray would show.</summary>
    private static GenerationRequest Sampled(string id, int promptSeed, int maxTokens) => Greedy(id, promptSeed, maxTokens) with
    {
        Sampling = new SamplingParams { MaxTokens = maxTokens, Temperature = 1, Seed = (ulong)(1000 + promptSeed), IgnoreEos = true },
    };

    [Theory]
    [InlineData(1)]
    [InlineData(2)] // each stage tp2 on its worker
    public async Task A_replica_with_its_stages_on_two_workers_answers_as_the_same_replica_on_one_and_leaves_nothing_behind(int tp)
    {
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"], devicesPerNode: 2 * tp,
            controller: new ControllerSettings { UnloadGrace = TimeSpan.FromMilliseconds(200) });
        string[] Devices(string firstStageNode, string secondStageNode, int firstIndex) =>
            [.. Enumerable.Range(0, tp).Select(r => $"{firstStageNode}/{r}"), .. Enumerable.Range(0, tp).Select(r => $"{secondStageNode}/{firstIndex + r}")];
        var together = Replica("together", Devices("node0", "node0", tp)) with { Tp = tp, Pp = 2 };
        var split = Replica("split", Devices("node0", "node1", 0)) with { Tp = tp, Pp = 2 };
        var requests = Enumerable.Range(0, 4).Select(i => Sampled($"s{i}", i, 24)).Append(Greedy("g", 7, 24)).ToArray();

        await using var frontEnd = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, together));
        await LocalCluster.WaitForReplicasAsync(frontEnd, "together");
        var onOne = await Task.WhenAll(requests.Select(r => TokensAsync(frontEnd, r)));

        var report = await frontEnd.ApplyAsync(PlanOf(cluster.ClusterId, 2, split));
        Assert.True(report.Applied, report.Error);
        Assert.Contains("stages across workers", Assert.Single(report.Loaded).Origin);
        var onTwo = await Task.WhenAll(requests.Select(r => TokensAsync(frontEnd, r)));

        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(onOne[i], onTwo[i]);
        Assert.Equal((await ReferenceAsync([requests[^1]]))[0], onTwo[^1]);
        // Every step of the split replica (24 tokens: at least 24 steps) ran its second stage on node1; the status poll may trail.
        await LocalCluster.WaitForAsync(frontEnd, f => f.Workers.Any(w => w.Node == "node1" && w.StageRuns.Length == 1 && w.StageRuns[0].Steps >= 24),
            "node1's status to list its stage run with the split replica's steps");
        var run = Assert.Single(frontEnd.Workers.Single(w => w.Node == "node1").StageRuns);
        Assert.Equal(("node0", 1, 1), (run.HeadNode, run.FirstStage, run.NumStages));
        Assert.Empty(frontEnd.Workers.Single(w => w.Node == "node1").Replicas); // node1 runs no engine of its own

        // Back to one worker: the split replica goes, and its stages on node1 with it.
        Assert.True((await frontEnd.ApplyAsync(PlanOf(cluster.ClusterId, 3, together))).Applied);
        await LocalCluster.WaitForAsync(frontEnd, f => f.Workers.Any(w => w.Node == "node1" && w.StageRuns.Length == 0)
            && f.Workers.Any(w => w.Node == "node0" && w.Replicas.Length == 1), "the split replica and its stages on node1 to be unloaded");
    }

    [Fact]
    public async Task Requests_on_a_split_replica_that_a_switch_retires_move_and_recompute_since_its_cache_holds_only_some_layers()
    {
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"],
            controller: new ControllerSettings { UnloadGrace = TimeSpan.FromMilliseconds(200) }, stepPace: TimeSpan.FromMilliseconds(15));
        await using var frontEnd = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, Replica("split", "node0/0", "node1/0") with { Pp = 2, Tp = 1 }));
        await LocalCluster.WaitForReplicasAsync(frontEnd, "split");
        var requests = Enumerable.Range(0, 4).Select(i => Greedy($"m{i}", i, 200)).ToArray();
        var streams = await StartStreamsAsync(frontEnd, requests, startedAfter: 1);

        Assert.True((await frontEnd.ApplyAsync(PlanOf(cluster.ClusterId, 2, Replica("one", "node1/1")))).Applied);
        var outputs = await Task.WhenAll(streams);

        var reference = await ReferenceAsync(requests);
        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(reference[i], outputs[i]);
        Assert.Equal((requests.Length, 0), (frontEnd.Counters.NumMoved, frontEnd.Counters.NumMovedWithKv));
        Assert.Equal(0, frontEnd.Counters.NumBreaks);
    }

    [Fact]
    public async Task When_the_first_stages_worker_dies_the_later_stages_it_left_behind_are_freed()
    {
        // node0 holds the membership table, so the crash is node1's: it runs the split replica's engine and first stage.
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"],
            controller: new ControllerSettings { UnloadGrace = TimeSpan.FromMilliseconds(200) });
        var split = Replica("split", "node1/0", "node0/0") with { Pp = 2, Tp = 1 };
        await using var frontEnd = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, split, Replica("local", "node0/1")));
        await LocalCluster.WaitForReplicasAsync(frontEnd, "split", "local");
        await LocalCluster.WaitForAsync(frontEnd, f => f.Workers.Any(w => w.Node == "node0" && w.StageRuns.Length == 1), "node0 to hold the split replica's second stage");

        await cluster.CrashAsync("node1");

        await LocalCluster.WaitForReplicasAsync(frontEnd, "local");
        await LocalCluster.WaitForAsync(frontEnd, f => f.Workers.Any(w => w.Node == "node0" && w.StageRuns.Length == 0),
            "the controller to free node0's run of the dead worker's replica");
        var request = Greedy("left", 4, 8);
        Assert.Equal((await ReferenceAsync([request]))[0], await TokensAsync(frontEnd, request));
    }

    [Fact]
    public async Task The_worker_of_a_later_stage_crashing_mid_stream_costs_no_request_and_the_replica_comes_back()
    {
        // node0 holds the localhost membership table and the engines; node1 holds the split replica's second stage.
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"], stepPace: TimeSpan.FromMilliseconds(10));
        var split = Replica("split", "node0/0", "node1/0") with { Pp = 2, Tp = 1 };
        await using var frontEnd = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, split, Replica("local", "node0/1")));
        await LocalCluster.WaitForReplicasAsync(frontEnd, "split", "local");

        const int maxTokens = 60;
        var requests = Enumerable.Range(0, 6).Select(i => Greedy($"p{i}", i, maxTokens)).ToArray();
        var streams = await StartStreamsAsync(frontEnd, requests, startedAfter: 3);
        Assert.True(frontEnd.Deployment!.Replicas.Single(r => r.Id == "split").Outstanding > 0, "some requests must be on the split replica");

        await cluster.CrashAsync("node1");
        var outputs = await Task.WhenAll(streams);

        var reference = await ReferenceAsync(requests);
        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(reference[i], outputs[i]);
        Assert.True(frontEnd.Counters.NumBreaks > 0, "the split replica's streams broke and resumed on the other");
        await LocalCluster.WaitForReplicasAsync(frontEnd, "local");

        await cluster.StartWorkerAsync("node1");
        await LocalCluster.WaitForReplicasAsync(frontEnd, "split", "local");
        var after = Greedy("after", 9, 8);
        Assert.Equal((await ReferenceAsync([after]))[0], await TokensAsync(frontEnd, after));
    }
}
