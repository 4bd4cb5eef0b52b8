using System.Globalization;
using OServe.Contracts;
using OServe.Planner.Workload;

namespace OServe.Engine.Demo;

/// <summary>One stretch of the workload, [FromS, ToS): one request type whose rate goes linearly from RateFrom to RateTo.</summary>
public sealed record DemoPhase(string Label, double FromS, double ToS, string Type, double RateFromRps, double RateToRps)
{
    public double RateAt(double t) => RateFromRps + (RateToRps - RateFromRps) * (t - FromS) / (ToS - FromS);
    public double ExpectedRequests => (RateFromRps + RateToRps) / 2 * (ToS - FromS);
}

/// <summary>
/// The demo's workload, which moves between the two regimes of the deployments it compares:
/// long prompts at a light rate (where one tp2 replica, both cores on each prompt, gives the
/// lower latency), then chats ramping up to a burst and back down (where two tp1 replicas, no
/// synchronisation between cores, serve more), then long prompts again. The ramps are what a
/// forecaster can follow; nothing in the demo knows when they happen but the trace itself.
/// Arrivals are a Poisson process of the phases' rates (thinning), seeded.
/// </summary>
public sealed record DemoWorkload(Trace Trace, IReadOnlyList<RequestTypeSpec> Types, IReadOnlyList<DemoPhase> Phases, DemoRequestShapes Shapes, string Description)
{
    public const string Chat = "chat", Long = "long";

    /// <summary>
    /// The phases over <paramref name="durationS"/> seconds: long 30%, chats up 15%, burst 12%, chats
    /// down 8%, long 35%. The ramp up spans two controller windows of the default replay (14 s, 1 s
    /// windows; surge checks close a window early): the paper's workload moves over minutes against
    /// switches of seconds, and a ramp shorter than two windows leaves a forecaster nothing to see
    /// before the burst. The long phases are 65% of the time (54% until late 2026-12-05) so that long
    /// prompts, at a light rate, are still over 1% of the requests: a deployment's P99 then shows
    /// what they cost it, not only what the far more numerous chats cost.
    /// </summary>
    public static IReadOnlyList<DemoPhase> PhasesOf(DemoRates rates, double durationS)
    {
        double T(double f) => f * durationS;
        return
        [
            new("long prompts, light load", T(0), T(0.30), Long, rates.LongRps, rates.LongRps),
            new("chats ramping up", T(0.30), T(0.45), Chat, rates.ChatLowRps, rates.ChatPeakRps),
            new("chat burst", T(0.45), T(0.57), Chat, rates.ChatPeakRps, rates.ChatPeakRps),
            new("chats ramping down", T(0.57), T(0.65), Chat, rates.ChatPeakRps, rates.ChatLowRps),
            new("long prompts, light load", T(0.65), T(1.0), Long, rates.LongRps, rates.LongRps),
        ];
    }

    public static DemoWorkload Build(DemoRequestShapes shapes, DemoRates rates, double durationS, double windowS, int seed)
    {
        if (!(durationS > 0)) throw new ArgumentException($"the demo workload needs a positive duration, got {durationS}");
        if (!(rates.LongRps > 0 && rates.ChatLowRps >= 0 && rates.ChatPeakRps > 0))
            throw new ArgumentException($"demo rates must be positive: long {rates.LongRps}, chat {rates.ChatLowRps}..{rates.ChatPeakRps} req/s");
        var phases = PhasesOf(rates, durationS);
        var rng = new Random(seed);
        double max = phases.Max(p => Math.Max(p.RateFromRps, p.RateToRps));
        var requests = new List<Request>();
        // Thinning: candidates at the top rate, each kept with probability rate(t) / top rate.
        for (double t = Exponential(rng, max); t < durationS; t += Exponential(rng, max))
        {
            var phase = phases.First(p => t < p.ToS);
            if (rng.NextDouble() * max >= phase.RateAt(t)) continue;
            var (input, output) = phase.Type == Chat ? (shapes.ChatInput, shapes.ChatOutput) : (shapes.LongInput, shapes.LongOutput);
            requests.Add(new Request(t, Jitter(rng, input, shapes.Jitter), Jitter(rng, output, shapes.Jitter)));
        }
        // Every phase holds at least one request: on a slow machine calibration sizes the rates so
        // low that a short run could draw none, and a replay needs something to serve in each regime.
        foreach (var p in phases.Where(p => !requests.Any(r => r.Arrival >= p.FromS && r.Arrival < p.ToS)))
        {
            var (input, output) = p.Type == Chat ? (shapes.ChatInput, shapes.ChatOutput) : (shapes.LongInput, shapes.LongOutput);
            requests.Add(new Request((p.FromS + p.ToS) / 2, input, output));
        }
        requests.Sort((a, b) => a.Arrival.CompareTo(b.Arrival));
        var trace = new Trace("oserve demo (phased long prompts / chat burst)", requests.ToArray(), 0, "");

        // The initial plan is made for the first window's demand, as a deployment started for the traffic it meets.
        double w = Math.Min(windowS, durationS);
        double FirstWindowRate(string type) => Math.Max(0.02, phases.Where(p => p.Type == type && p.FromS < w)
            .Sum(p => (p.RateAt(p.FromS) + p.RateAt(Math.Min(w, p.ToS))) / 2 * (Math.Min(w, p.ToS) - p.FromS)) / w);
        RequestTypeSpec[] types =
        [
            new() { Name = Chat, InputTokens = shapes.ChatInput, OutputTokens = shapes.ChatOutput, RateRps = Math.Round(FirstWindowRate(Chat), 4) },
            new() { Name = Long, InputTokens = shapes.LongInput, OutputTokens = shapes.LongOutput, RateRps = Math.Round(FirstWindowRate(Long), 4) },
        ];
        var inv = CultureInfo.InvariantCulture;
        var description = string.Create(inv,
            $"{requests.Count} requests over {durationS:F0} s: long prompts (~{shapes.LongInput} in / {shapes.LongOutput} out) at {rates.LongRps:F1} req/s, " +
            $"then chats (~{shapes.ChatInput} in / {shapes.ChatOutput} out) {rates.ChatLowRps:F1} -> {rates.ChatPeakRps:F1} -> {rates.ChatLowRps:F1} req/s, then long prompts again");
        return new DemoWorkload(trace, types, phases, shapes, description);
    }

    /// <summary>Requests of each phase in the trace (by arrival time).</summary>
    public IReadOnlyList<int> CountPerPhase() =>
        Phases.Select(p => Trace.Requests.Count(r => r.Arrival >= p.FromS && r.Arrival < p.ToS)).ToArray();

    /// <summary>Writes the trace as an Azure CSV, which the load generator replays in time.</summary>
    public void WriteAzureCsv(string path)
    {
        var t0 = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        using var w = new StreamWriter(path);
        w.WriteLine("TIMESTAMP,ContextTokens,GeneratedTokens");
        // Arrival 0 is the run's start: the reader shifts the first row to 0, so a row at exactly 0
        // (the first request's lengths, sent at once) keeps the schedule where it was.
        w.WriteLine($"{t0:yyyy-MM-dd HH:mm:ss.fffffff},{Trace.Requests[0].InputTokens},{Trace.Requests[0].OutputTokens}");
        foreach (var r in Trace.Requests.Skip(1))
            w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{t0.AddTicks((long)(r.Arrival * TimeSpan.TicksPerSecond)):yyyy-MM-dd HH:mm:ss.fffffff},{r.InputTokens},{r.OutputTokens}"));
    }

    private static double Exponential(Random rng, double rate) => -Math.Log(1 - rng.NextDouble()) / rate;

    private static int Jitter(Random rng, int mean, double jitter) =>
        Math.Max(1, (int)Math.Round(mean * (1 + jitter * (2 * rng.NextDouble() - 1))));
}
