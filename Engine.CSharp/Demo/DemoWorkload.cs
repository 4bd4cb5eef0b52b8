using System.Globalization;
using Microsoft.FSharp.Collections;
using OServe.Contracts;
using OServe.Planner.Workload;

namespace OServe.Engine.Demo;

/// <summary>
/// The demo's built-in workload, made with the planner's synthetic generator: short chats
/// (about 48 tokens in, 32 out) and long prompts (about 400 in, 8 out) whose rates swing in
/// opposition over the run, rate(t) = base * (1 +/- 0.85 cos(2 pi t / duration)): chat-heavy at
/// the start, long-prompt-heavy in the middle, chat-heavy again at the end. Sized for a 2-core CPU.
/// </summary>
public sealed record DemoWorkload(Trace Trace, IReadOnlyList<RequestTypeSpec> Types, string Description)
{
    public static DemoWorkload Build(double durationS, double windowS, double rateScale, int seed)
    {
        const double amplitude = 0.85;
        var chat = new TrafficClass("chat", LengthDistribution.OfMeanMedian(48, 40), LengthDistribution.OfMeanMedian(32, 28),
            1.2 * rateScale, amplitude, durationS, durationS / 4, 0); // + cos: peaks at 0 and at the end
        var longPrompt = new TrafficClass("long", LengthDistribution.OfMeanMedian(400, 360), LengthDistribution.OfMeanMedian(8, 6),
            0.6 * rateScale, amplitude, durationS, -durationS / 4, 0); // - cos: peaks mid-run
        var trace = SyntheticWorkload.generate(new SyntheticOptions(ListModule.OfArray([chat, longPrompt]), durationS, 1024, seed));
        if (trace.Requests.Length < 2) throw new ArgumentException($"the demo workload of {durationS} s holds {trace.Requests.Length} requests; make it longer");
        var typing = RequestTyping.fit(new TypingOptions(2, TypingOptions.Default.Seed, TypingOptions.Default.MaxIterations), trace.Requests);
        if (typing.IsError) throw new InvalidOperationException("typing the demo workload: " + typing.ErrorValue);
        var types = typing.ResultValue;
        // The initial plan is made for the first window's demand, as a deployment started for the traffic it meets.
        var first = trace.Requests.Where(r => r.Arrival < windowS).ToArray();
        var specs = types.Select(t => new RequestTypeSpec
        {
            Name = t.CentroidInputTokens < 150 ? "chat" : "long",
            InputTokens = Math.Round(t.MeanInputTokens, 1),
            OutputTokens = Math.Round(t.MeanOutputTokens, 1),
            RateRps = Math.Round(Math.Max(0.02, first.Count(r => RequestTyping.classify(types, r.InputTokens, r.OutputTokens) == t.Id) / windowS), 4),
        }).ToArray();
        var description = string.Create(CultureInfo.InvariantCulture,
            $"{trace.Requests.Length} requests over {durationS:F0} s: chat (~48 in / 32 out) and long prompts (~400 in / 8 out), mix shifting chat -> long -> chat");
        return new DemoWorkload(trace, specs, description);
    }

    /// <summary>Writes the trace as an Azure CSV, which the load generator replays in time.</summary>
    public void WriteAzureCsv(string path)
    {
        var t0 = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        using var w = new StreamWriter(path);
        w.WriteLine("TIMESTAMP,ContextTokens,GeneratedTokens");
        // Arrival 0 is the run's start: the generator's first arrival is a little after it, and the
        // reader shifts the first row to 0, so a row at exactly 0 keeps the schedule where it was.
        w.WriteLine($"{t0:yyyy-MM-dd HH:mm:ss.fffffff},{Trace.Requests[0].InputTokens},{Trace.Requests[0].OutputTokens}");
        foreach (var r in Trace.Requests.Skip(1))
            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{t0.AddTicks((long)(r.Arrival * TimeSpan.TicksPerSecond)):yyyy-MM-dd HH:mm:ss.fffffff},{r.InputTokens},{r.OutputTokens}"));
    }
}
