using System.Diagnostics;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;

namespace OServe.Engine.Demo;

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
