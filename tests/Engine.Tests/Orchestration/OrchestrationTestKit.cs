using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using OServe.Models;
using OServe.Models.Llama;
using OServe.Models.Parallelism;
using TorchSharp;
using Xunit;

namespace OServe.Engine.Tests.Orchestration;

/// <summary>A tiny built-in model, a 4-device logical cluster, plans over it, and a server over a <see cref="PlanRuntime"/>.</summary>
internal static class OrchestrationTestKit
{
    public const string ModelName = "tiny";

    public static LoadedModel TinyModel() => BuiltInModel.Create(new BuiltInModelOptions
    {
        Dim = 64, HiddenDim = 160, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxSeqLen = 512, Name = ModelName, Seed = 7,
    });

    public static Cluster LogicalCluster { get; } = new()
    {
        Name = "cpu-logical-4",
        GpuTypes = [new GpuType { Name = "cpu-logical", MemoryGib = 4, Tflops = 0.1, HbmGbps = 20 }],
        Nodes = [new Node { Name = "node0", GpuType = "cpu-logical", Gpus = 4, IntraLinkGbps = 10 }],
        InterNodeLinkGbps = 1,
    };

    public static readonly RequestTypeSpec Short = new() { Name = "short", InputTokens = 8, OutputTokens = 16 };
    public static readonly RequestTypeSpec Long = new() { Name = "long", InputTokens = 200, OutputTokens = 128 };

    public static ReplicaSpec Replica(string id, params string[] devices) => new()
    {
        Id = id, GpuType = "cpu-logical", Devices = devices, Tp = devices.Length,
    };

    /// <summary>A pipeline-parallel replica: one stage per device.</summary>
    public static ReplicaSpec PipelineReplica(string id, params string[] devices) => new()
    {
        Id = id, GpuType = "cpu-logical", Devices = devices, Pp = devices.Length,
    };

    /// <summary>A plan of <paramref name="replicas"/>, every type spread over all of them.</summary>
    public static Plan PlanOf(int version, params ReplicaSpec[] replicas) => new()
    {
        Version = version, Model = ModelName, Cluster = LogicalCluster.Name, Planner = "test",
        RequestTypes = [Short, Long],
        Replicas = replicas,
        Routing =
        [
            new RoutingEntry { Type = "short", Weights = replicas.ToDictionary(r => r.Id, _ => 1.0) },
            new RoutingEntry { Type = "long", Weights = replicas.ToDictionary(r => r.Id, _ => 1.0) },
        ],
    };

    /// <summary>Two tp=1 replicas, each type spread over both.</summary>
    public static Plan TwoReplicas(int version = 1) => new()
    {
        Version = version, Model = ModelName, Cluster = LogicalCluster.Name, Planner = "test",
        RequestTypes = [Short, Long],
        Replicas = [Replica("a", "node0/0"), Replica("b", "node0/1")],
        Routing =
        [
            new RoutingEntry { Type = "short", Weights = new Dictionary<string, double> { ["a"] = 1, ["b"] = 1 } },
            new RoutingEntry { Type = "long", Weights = new Dictionary<string, double> { ["a"] = 1, ["b"] = 1 } },
        ],
    };

    /// <summary>One tp=1 replica on a device neither replica of <see cref="TwoReplicas"/> uses: both must hand over.</summary>
    public static Plan OneReplica(int version = 2) => new()
    {
        Version = version, Model = ModelName, Cluster = LogicalCluster.Name, Planner = "test",
        RequestTypes = [Short, Long],
        Replicas = [Replica("c", "node0/2")],
        Routing =
        [
            new RoutingEntry { Type = "short", Weights = new Dictionary<string, double> { ["c"] = 1 } },
            new RoutingEntry { Type = "long", Weights = new Dictionary<string, double> { ["c"] = 1 } },
        ],
    };

    public static PlanRuntimeOptions Options(IShardTransfer? transfer = null, InFlightPolicy inFlight = InFlightPolicy.Migrate, int finishInPlaceMaxSteps = 0) => new()
    {
        Engine = new EngineSettings { MaxNumSeqs = 32, KvCacheGib = 0.05 },
        Transfer = transfer ?? ShardTransfer.Instance,
        Switch = new SwitchOptions { InFlight = inFlight, FinishInPlaceMaxSteps = finishInPlaceMaxSteps },
    };

    public static PlanRuntime Start(LoadedModel model, Plan plan, PlanRuntimeOptions? options = null) =>
        PlanRuntime.Start(plan, LogicalCluster, model, new RandomWeightStore(model.Config, 7), options ?? Options());

    public static async Task<WebApplication> ServeAsync(PlanRuntime runtime)
    {
        var app = ServerHost.Build(new ServeOptions { Port = 0 }, runtime,
            configure: b => b.Logging.ClearProviders(), engineClock: () => runtime.Clock.Now,
            mapEndpoints: a => PlanEndpoints.Map(a, runtime));
        await app.StartAsync();
        return app;
    }

    /// <summary>A greedy streamed completion: its text, finish reasons seen, and whether [DONE] came exactly once.</summary>
    public sealed record Streamed(string Text, IReadOnlyList<string> FinishReasons, int NumDone, int NumChunks);

    public static async Task<Streamed> StreamAsync(HttpClient http, string prompt, int maxTokens, TaskCompletionSource? firstChunk = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = JsonContent.Create(new { model = ModelName, prompt, max_tokens = maxTokens, temperature = 0, ignore_eos = true, stream = true }),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        var finishes = new List<string>();
        int done = 0, chunks = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            var data = line["data: ".Length..];
            if (data == "[DONE]") { done++; continue; }
            using var json = JsonDocument.Parse(data);
            if (!json.RootElement.TryGetProperty("choices", out var choices) || choices.GetArrayLength() == 0) continue;
            var choice = choices[0];
            chunks++;
            firstChunk?.TrySetResult();
            text.Append(choice.GetProperty("text").GetString());
            if (choice.TryGetProperty("finish_reason", out var finish) && finish.ValueKind == JsonValueKind.String)
                finishes.Add(finish.GetString()!);
        }
        return new Streamed(text.ToString(), finishes, done, chunks);
    }

    /// <summary>
    /// A greedy answer served under load (other requests batched with it, moved across a switch)
    /// must equal the one-at-a-time <paramref name="alone"/> answer. Float32 matmuls on the CPU sum
    /// in an order that depends on the batch's row count, so a near tie between the two best tokens
    /// can flip; the texts may therefore part only at a token where the reference itself was a tie
    /// (top two logprobs within 1e-3, asked of <paramref name="http"/>, the reference server). Any
    /// other difference (a lost, repeated or wrong token) fails with where it happened.
    /// </summary>
    /// <returns>Whether a request with logprobs was sent to <paramref name="http"/> (servers that count requests see one more).</returns>
    public static async Task<bool> AssertSameAsAloneAsync(HttpClient http, string prompt, int maxTokens, Streamed result, Streamed alone)
    {
        if (alone.Text == result.Text)
        {
            Assert.Equal(alone.NumChunks, result.NumChunks);
            return false;
        }
        using var response = await http.PostAsJsonAsync("/v1/completions",
            new { model = ModelName, prompt, max_tokens = maxTokens, temperature = 0, ignore_eos = true, logprobs = 2 });
        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var choice = json.RootElement.GetProperty("choices")[0];
        // The one-at-a-time answer is not bit-stable either (the replicas a switch builds, sharded or
        // copied, may sum in another order than the ones they replace, and MKL's sums may change
        // with memory alignment), so asked again it can fall on either side of the same tie: compare
        // with the answer whose logprobs are at hand.
        string reference = choice.GetProperty("text").GetString()!;
        if (reference == result.Text) return true;
        int d = 0;
        while (d < Math.Min(reference.Length, result.Text.Length) && reference[d] == result.Text[d]) d++;
        var logprobs = choice.GetProperty("logprobs");
        var offsets = logprobs.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToArray();
        int k = 0;
        while (k + 1 < offsets.Length && offsets[k + 1] - offsets[0] <= d) k++;
        var top = logprobs.GetProperty("top_logprobs")[k].EnumerateObject().Select(p => p.Value.GetSingle()).OrderDescending().ToArray();
        // One entry for two alternatives: both decode to the same text, so a flip cannot be the difference.
        double margin = top.Length >= 2 ? top[0] - top[1] : double.PositiveInfinity;
        Assert.True(margin < 1e-3,
            $"'{prompt}': the answer under load parts from the one-at-a-time answer at character {d} (token {k}), where the reference's best token " +
            $"leads by {margin:G3} nats (not a tie):\n alone: {reference}\n load:  {result.Text}");
        return true;
    }

    public static string Prompt(int i) => $"request {i}: " + string.Join(' ', Enumerable.Repeat("once upon a time", 1 + i % 5));

    /// <summary>Fails every build after <paramref name="failAfter"/> successes, as a link or device failing mid-switch.</summary>
    public sealed class FailingTransfer(int failAfter = 0) : IShardTransfer
    {
        private int _calls;

        public ParallelLlama Build(LlamaConfig config, IReadOnlyList<PoolDevice> devices, int tp, int pp, IWeightStore storage, torch.ScalarType dtype, bool copyFromPeers) =>
            Interlocked.Increment(ref _calls) > failAfter
                ? throw new IOException(copyFromPeers ? "injected failure: the peer link dropped mid-copy" : "injected failure: storage read failed")
                : ShardTransfer.Instance.Build(config, devices, tp, pp, storage, dtype, copyFromPeers);
    }
}
