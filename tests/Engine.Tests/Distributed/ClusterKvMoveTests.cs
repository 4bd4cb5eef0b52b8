using OServe.Contracts;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using Orleans;
using Xunit;
using static OServe.Engine.Tests.Distributed.ClusterServingTests;

namespace OServe.Engine.Tests.Distributed;

/// <summary>
/// A switch that retires a replica while requests run on it moves them, KV cache and stream, to
/// the new plan's replica: across workers (the KV fetched in chunks and re-sliced to the new
/// layout) and within one (handed over whole). Every client sees one stream with the tokens of
/// an uninterrupted run.
/// </summary>
public sealed class ClusterKvMoveTests
{
    private const int MaxTokens = 200; // 12 prompt tokens + 200 fit max-model-len 256 (the resumed prompt grows as max_tokens shrinks)

    [Theory]
    [InlineData("node1/0,node1/1")] // another worker, tp1 -> tp2: KV read in chunks over Orleans and re-sliced by KV head
    [InlineData("node0/1")]         // the same worker, another device: the KV handed over whole
    public async Task Requests_running_on_a_retired_replica_move_with_their_KV_and_stream_the_uninterrupted_tokens(string newDevices)
    {
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"],
            controller: new ControllerSettings { UnloadGrace = TimeSpan.FromMilliseconds(200) },
            stepPace: TimeSpan.FromMilliseconds(15)); // 200 tokens take 3 s or more: still running when the old replica retires
        await using var frontEnd = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, Replica("a", "node0/0")));
        await LocalCluster.WaitForReplicasAsync(frontEnd, "a");

        var requests = Enumerable.Range(0, 6).Select(i => Greedy($"m{i}", i, MaxTokens)).ToArray();
        var outputs = await StartStreamsAsync(frontEnd, requests, startedAfter: 1);

        var report = await frontEnd.ApplyAsync(PlanOf(cluster.ClusterId, 2, Replica("b", newDevices.Split(','))));
        Assert.True(report.Applied, report.Error);
        var results = await Task.WhenAll(outputs).WaitAsync(TimeSpan.FromSeconds(120));

        var reference = await ReferenceAsync(requests);
        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(reference[i], results[i]);
        Assert.Equal(requests.Length, frontEnd.Counters.NumMoved);
        Assert.Equal(requests.Length, frontEnd.Counters.NumMovedWithKv);
        Assert.Equal(requests.Length, frontEnd.Counters.NumMovedOn);
        Assert.Equal(0, frontEnd.Counters.NumBreaks);

        await LocalCluster.WaitForAsync(frontEnd, f => f.Workers.Any(w => w.Node == "node0" && w.RequestsMovedOut > 0), "node0's status to count the moves");
        var source = frontEnd.Workers.Single(w => w.Node == "node0");
        var target = frontEnd.Workers.Single(w => w.Node == ReplicaShape.NodeOf(newDevices));
        Assert.Equal((requests.Length, requests.Length), (source.RequestsMovedOut, source.RequestsMovedOutWithKv));
        Assert.Equal((requests.Length, requests.Length), (target.RequestsMovedIn, target.RequestsResumedFromKv));
        if (target.Node != source.Node)
        {
            Assert.True(target.KvBytesReceived > 0, "the KV came over the network");
            Assert.Equal(target.KvBytesReceived, source.KvBytesSent);
        }
        else
            Assert.Equal(0, source.KvBytesSent); // handed over in the process, no bytes made
    }

    [Fact]
    public async Task A_moved_request_whose_KV_is_gone_recomputes_its_prompt_and_answers_the_same()
    {
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"]);
        await using var frontEnd = await cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, Replica("a", "node0/0")));
        await LocalCluster.WaitForReplicasAsync(frontEnd, "a");
        var request = Greedy("gone", 3, 30);
        var reference = (await ReferenceAsync([request]))[0];

        // Resumed after 10 tokens, with a ticket no worker holds (its worker died, or it expired).
        var client = await cluster.ConnectAsync();
        var worker = client.GetGrain<IWorkerGrain>("node0");
        var wire = new WorkerRequest("gone~1", [.. request.PromptTokens, .. reference.Take(10)], WireSampling.Of(request.Sampling) with { MaxTokens = 20 })
        {
            ResumedOutputTokens = 10,
            KvFrom = new KvTicket("node1", 12345, request.PromptTokens.Count + 9, 1000),
        };
        var rest = new List<int>();
        await foreach (var e in worker.Generate(ReplicaShape.Of(Replica("a", "node0/0")).Key, wire))
            if (e.TokenId >= 0)
                rest.Add(e.TokenId);

        Assert.Equal(reference.Skip(10), rest);
        var status = await worker.GetStatus();
        Assert.Equal((1, 0), (status.RequestsMovedIn, status.RequestsResumedFromKv));
    }
}
