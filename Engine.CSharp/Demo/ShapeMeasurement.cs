using System.Diagnostics;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;

namespace OServe.Engine.Demo;

/// <summary>
/// The two deployments the demo's planner chooses between on two core-owning logical devices, as
/// plans the runtime can start: one tp2 replica over both devices, or two tp1 replicas, one per device.
/// </summary>
public static class DemoShapes
{
    public const string Tp2 = "1 x tp2";
    public const string TwoTp1 = "2 x tp1";
    /// <summary>One tp1 replica on the first device alone (what calibration fits the coefficients on).</summary>
    public const string OneTp1 = "1 x tp1";

    /// <summary>A plan of <paramref name="shape"/> on the first two devices of <paramref name="cluster"/>'s node, every type routed to every replica.</summary>
    public static Plan PlanOf(string shape, Cluster cluster, string model, IReadOnlyList<RequestTypeSpec> types, int version = 1)
    {
        var node = cluster.Nodes[0];
        if (node.Gpus < (shape == OneTp1 ? 1 : 2)) throw new ArgumentException($"the demo's shape {shape} needs more devices; cluster '{cluster.Name}' node '{node.Name}' has {node.Gpus}");
        string d0 = $"{node.Name}/0", d1 = $"{node.Name}/1";
        ReplicaSpec[] replicas = shape switch
        {
            OneTp1 => [new ReplicaSpec { Id = "r0", GpuType = node.GpuType, Devices = [d0] }],
            Tp2 => [new ReplicaSpec { Id = "r0", GpuType = node.GpuType, Devices = [d0, d1], Tp = 2 }],
            TwoTp1 => [new ReplicaSpec { Id = "r0", GpuType = node.GpuType, Devices = [d0] }, new ReplicaSpec { Id = "r1", GpuType = node.GpuType, Devices = [d1] }],
            _ => throw new ArgumentException($"unknown demo shape '{shape}' (known: {Tp2}, {TwoTp1})", nameof(shape)),
        };
        return new Plan
        {
            Version = version, Model = model, Cluster = cluster.Name, Planner = "static " + shape,
            RequestTypes = types,
            Replicas = replicas,
            Routing = types.Select(t => new RoutingEntry { Type = t.Name, Weights = replicas.ToDictionary(r => r.Id, _ => 1.0) }).ToArray(),
        };
    }
}

/// <summary>What one deployment did on the engine: a long prompt's TTFT alone, and a burst of chats' throughput.</summary>
public sealed record ShapeMeasurement(string Shape, int LongPromptTokens, double LongTtftS, int BurstRequests, int BurstInput, int BurstOutput, double BurstSeconds)
{
    public double BurstRps => BurstRequests / BurstSeconds;

    /// <summary>
    /// TTFT of one <paramref name="longPrompt"/>-token prompt on an idle deployment (best of
    /// <paramref name="repeats"/>), then <paramref name="burst"/> chats of (input, output) sent at
    /// once: requests completed per second until the last one finishes.
    /// </summary>
    public static async Task<ShapeMeasurement> RunAsync(string shape, IInferenceEngine engine, int longPrompt, int repeats,
        (int Count, int Input, int Output) burst, CancellationToken ct)
    {
        int vocab = engine.VocabSize ?? 256;
        await TimeAsync(engine, vocab, 16, 2, 0, ct); // warm-up: first-call costs stay out of the figures
        double ttft = double.PositiveInfinity;
        for (int i = 0; i < repeats; i++)
            ttft = Math.Min(ttft, (await TimeAsync(engine, vocab, longPrompt, 1, i, ct)).First);
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, burst.Count).Select(i => TimeAsync(engine, vocab, burst.Input, burst.Output, 100 + i, ct)));
        return new ShapeMeasurement(shape, longPrompt, ttft, burst.Count, burst.Input, burst.Output, watch.Elapsed.TotalSeconds);
    }

    /// <summary>Seconds to the first token and to the last of one greedy request with a random prompt (the seed fixes it).</summary>
    public static async Task<(double First, double Last)> TimeAsync(IInferenceEngine engine, int vocab, int promptTokens, int outputTokens, int seed, CancellationToken ct)
    {
        var rng = new Random(promptTokens * 7919 + seed);
        var prompt = Enumerable.Range(0, promptTokens).Select(_ => rng.Next(1, vocab)).ToArray();
        var request = new GenerationRequest($"demo-calibrate-{Guid.NewGuid():N}", prompt,
            new SamplingParams { MaxTokens = outputTokens, Temperature = 0, IgnoreEos = true });
        var sw = Stopwatch.StartNew();
        double first = double.NaN;
        await foreach (var ev in engine.GenerateAsync(request, ct))
        {
            if (ev.TokenId < 0) continue;
            if (double.IsNaN(first)) first = sw.Elapsed.TotalSeconds;
        }
        return (first, sw.Elapsed.TotalSeconds);
    }
}
