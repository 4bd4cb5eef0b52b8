using System.Diagnostics;
using OServe.Engine.Execution;

namespace OServe.Engine.Demo;

/// <summary>Timed requests against a running engine (greedy, random prompts fixed by a seed), as calibration uses them.</summary>
public static class EngineProbe
{
    /// <summary>Seconds to the first token and to the last of one request.</summary>
    public static async Task<(double First, double Last)> TimeAsync(IInferenceEngine engine, int promptTokens, int outputTokens, int seed, CancellationToken ct)
    {
        int vocab = engine.VocabSize ?? 256;
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

    /// <summary>Best-of-<paramref name="repeats"/> TTFT of one prompt on an otherwise idle engine.</summary>
    public static async Task<double> BestTtftAsync(IInferenceEngine engine, int promptTokens, int repeats, CancellationToken ct)
    {
        double best = double.PositiveInfinity;
        for (int i = 0; i < repeats; i++) best = Math.Min(best, (await TimeAsync(engine, promptTokens, 1, i, ct)).First);
        return best;
    }

    /// <summary>Best-of-<paramref name="repeats"/> seconds per decode step of one request alone.</summary>
    public static async Task<double> BestDecodeStepAsync(IInferenceEngine engine, int repeats, CancellationToken ct)
    {
        const int steps = 24;
        double best = double.PositiveInfinity;
        for (int i = 0; i < repeats; i++)
        {
            var t = await TimeAsync(engine, 16, steps + 1, i, ct);
            best = Math.Min(best, (t.Last - t.First) / steps);
        }
        return best;
    }

    /// <summary><paramref name="count"/> requests of (input, output) sent at once: requests completed per second until the last one finishes.</summary>
    public static async Task<double> BurstRpsAsync(IInferenceEngine engine, int count, int input, int output, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, count).Select(i => TimeAsync(engine, input, output, 100 + i, ct)));
        return count / watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Best of <paramref name="repeats"/> bursts (<see cref="BurstRpsAsync"/>), as the latencies are
    /// best-of: one burst of 32 chats lasts 0.15-0.3 s, so a pause of the process or the machine
    /// inside it reads as a slower deployment, and the demo's rates come from these figures.
    /// </summary>
    public static Task<double> BestBurstRpsAsync(IInferenceEngine engine, int count, int input, int output, int repeats, CancellationToken ct) =>
        HighestOfAsync(repeats, _ => BurstRpsAsync(engine, count, input, output, ct));

    /// <summary>The highest finite figure of <paramref name="repeats"/> (at least one) measurements run one after another; NaN when none was finite.</summary>
    public static async Task<double> HighestOfAsync(int repeats, Func<int, Task<double>> measure)
    {
        double best = double.NaN;
        for (int i = 0; i < Math.Max(1, repeats); i++)
        {
            double figure = await measure(i);
            if (double.IsFinite(figure) && !(figure <= best)) best = figure;
        }
        return best;
    }
}
