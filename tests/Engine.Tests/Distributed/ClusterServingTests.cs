using OServe.Contracts;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using Xunit;

namespace OServe.Engine.Tests.Distributed;

/// <summary>Workers as Orleans silos in this process, the front end's runtime over them: serving, switching, keeping the plan.</summary>
public sealed class ClusterServingTests
{
    internal static readonly RequestTypeSpec Short = new() { Name = "short", InputTokens = 8, OutputTokens = 16 };
    internal static readonly RequestTypeSpec Long = new() { Name = "long", InputTokens = 100, OutputTokens = 64 };

    internal static ReplicaSpec Replica(string id, params string[] devices) =>
        new() { Id = id, GpuType = "cpu-logical", Devices = devices, Tp = devices.Length, MaxNumSeqs = 8, MaxNumBatchedTokens = 512 };

    internal static Plan PlanOf(string cluster, int version, params ReplicaSpec[] replicas) => new()
    {
        Version = version, Model = LocalCluster.ModelName, Cluster = cluster, Planner = "test",
        RequestTypes = [Short, Long],
        Replicas = replicas,
        Routing =
        [
            new RoutingEntry { Type = "short", Weights = replicas.ToDictionary(r => r.Id, _ => 1.0) },
            new RoutingEntry { Type = "long", Weights = replicas.ToDictionary(r => r.Id, _ => 1.0) },
        ],
    };

    internal static GenerationRequest Greedy(string id, int promptSeed, int maxTokens) => new(id,
        Enumerable.Range(0, 12).Select(i => 100 + (promptSeed * 37 + i * 11) % 5000).ToArray(),
        new SamplingParams { MaxTokens = maxTokens, Temperature = 0, IgnoreEos = true });

    /// <summary>The tokens the single-process engine generates for these requests, one at a time.</summary>
    internal static async Task<List<int[]>> ReferenceAsync(IEnumerable<GenerationRequest> requests)
    {
        using var model = LocalCluster.TinyModel();
        await using var engine = LocalEngineBuilder.Create(model, LocalCluster.Engine);
        var outputs = new List<int[]>();
        foreach (var r in requests)
            outputs.Add(await TokensAsync(engine, r));
        return outputs;
    }

    internal static async Task<int[]> TokensAsync(IInferenceEngine engine, GenerationRequest request)
    {
        var tokens = new List<int>();
        int expectedCount = 0;
        await foreach (var e in engine.GenerateAsync(request, CancellationToken.None))
        {
            if (e.TokenId < 0) continue;
            tokens.Add(e.TokenId);
            Assert.Equal(++expectedCount, e.NumOutputTokens); // one token per event, none repeated or skipped
        }
        return tokens.ToArray();
    }

    /// <summary>
    /// Streams every request at once and returns once each has had <paramref name="startedAfter"/>
    /// tokens (or one stream failed); each task gives its request's tokens, checked one per event.
    /// </summary>
    internal static async Task<Task<int[]>[]> StartStreamsAsync(IInferenceEngine engine, IReadOnlyList<GenerationRequest> requests, int startedAfter)
    {
        int started = 0;
        var streams = requests.Select(r => Task.Run(async () =>
        {
            var tokens = new List<int>();
            await foreach (var e in engine.GenerateAsync(r, CancellationToken.None))
            {
                if (e.TokenId < 0) continue;
                tokens.Add(e.TokenId);
                Assert.Equal(tokens.Count, e.NumOutputTokens); // one token per event, none repeated or skipped
                if (tokens.Count == startedAfter) Interlocked.Increment(ref started);
            }
            return tokens.ToArray();
        })).ToArray();
        while (Volatile.Read(ref started) < requests.Count && !streams.Any(s => s.IsCompleted))
            await Task.Delay(10);
        return streams;
    }

    [Fact]
    public async Task Replicas_on_two_workers_stream_the_single_process_engines_greedy_tokens()
    {
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"]);
        var plan = PlanOf(cluster.ClusterId, 1, Replica("r0", "node0/0"), Replica("r1", "node1/0"));
        await using var frontEnd = await cluster.FrontEndAsync(plan);
        await LocalCluster.WaitForReplicasAsync(frontEnd, "r0", "r1");

        var requests = Enumerable.Range(0, 4).Select(i => Greedy($"q{i}", i, 24)).ToArray();
        var outputs = await Task.WhenAll(requests.Select(r => TokensAsync(frontEnd, r)));
        var reference = await ReferenceAsync(requests);
        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(reference[i], outputs[i]);
        await frontEnd.RefreshAsync();
        Assert.Equal(["node0", "node1"], frontEnd.View.LiveNodes);
    }
}
