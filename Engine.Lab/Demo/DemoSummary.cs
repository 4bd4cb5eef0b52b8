using System.Globalization;

namespace OServe.Engine.Demo;

/// <summary>One metric of one deployment over its repeats: mean, and the range the repeats spanned.</summary>
public sealed record Spread(double Mean, double Min, double Max, int Count)
{
    public double Width => Max - Min;

    public static Spread Of(IEnumerable<double> values)
    {
        var v = values.Where(double.IsFinite).ToArray();
        return v.Length == 0 ? new Spread(double.NaN, double.NaN, double.NaN, 0) : new Spread(v.Average(), v.Min(), v.Max(), v.Length);
    }
}

/// <summary>Adaptive against one static deployment on one metric.</summary>
/// <param name="Better">adaptive's mean is better.</param>
/// <param name="BeyondSpread">better, and every adaptive repeat beats every repeat of the static one (their ranges do not overlap; needs 2+ repeats each).</param>
/// <param name="Factor">how many times better (static / adaptive for lower-is-better metrics, adaptive / static otherwise).</param>
public sealed record Verdict(string Metric, string Static, Spread Adaptive, Spread StaticSpread, bool LowerIsBetter, bool Better, bool BeyondSpread, double Factor)
{
    public static Verdict Of(string metric, string staticName, Spread adaptive, Spread fixedRun, bool lowerIsBetter)
    {
        bool better = lowerIsBetter ? adaptive.Mean < fixedRun.Mean : adaptive.Mean > fixedRun.Mean;
        bool beyond = better && adaptive.Count >= 2 && fixedRun.Count >= 2 &&
            (lowerIsBetter ? adaptive.Max < fixedRun.Min : adaptive.Min > fixedRun.Max);
        double factor = lowerIsBetter ? fixedRun.Mean / adaptive.Mean : adaptive.Mean / fixedRun.Mean;
        return new Verdict(metric, staticName, adaptive, fixedRun, lowerIsBetter, better, beyond, factor);
    }

    public string Describe()
    {
        var inv = CultureInfo.InvariantCulture;
        // The change relative to the static deployment's mean, in the metric's good direction.
        double percent = 100 * Math.Abs(Adaptive.Mean - StaticSpread.Mean) / StaticSpread.Mean;
        string values = string.Create(inv, $"{Adaptive.Mean:F0} vs {StaticSpread.Mean:F0}");
        string how = Adaptive.Mean == StaticSpread.Mean ? "the same"
            : Better ? string.Create(inv, $"{(LowerIsBetter ? "lower" : "higher")} by {percent:F0}%") +
                (BeyondSpread ? ", beyond the run-to-run spread" : Adaptive.Count < 2 ? " (one replay each: spread not measured)" : ", but WITHIN the run-to-run spread")
            : string.Create(inv, $"WORSE by {percent:F0}%");
        return $"{Metric}: adaptive vs {Static}: {values}, {how}";
    }
}

/// <summary>
/// The demo's result: every replay of every deployment, each metric's mean and spread per
/// deployment, and the verdicts of adaptive against each static deployment.
/// </summary>
public sealed record DemoSummary(IReadOnlyList<RunResult> Runs)
{
    public static readonly (string Name, Func<RunMetrics, double> Value, bool LowerIsBetter, string Unit)[] Metrics =
    [
        ("P99 TTFT", m => m.P99TtftMs, true, "ms"),
        ("P99 E2E", m => m.P99E2eMs, true, "ms"),
        ("P50 E2E", m => m.P50E2eMs, true, "ms"),
        ("P99 E2E long", m => m.P99E2eLongMs, true, "ms"),
        ("P99 E2E chat", m => m.P99E2eChatMs, true, "ms"),
        ("completed", m => m.Completed, false, "req"),
        ("output tok/s", m => m.OutputTokensPerS, false, "tok/s"),
    ];

    /// <summary>The three metrics the verdict is about (the issue's): P99 TTFT, P99 E2E, completed requests.</summary>
    public static readonly string[] VerdictMetrics = ["P99 TTFT", "P99 E2E", "completed"];

    public IReadOnlyList<string> Deployments => Runs.Select(r => r.Deployment).Distinct().ToArray();
    public IReadOnlyList<string> Statics => Deployments.Where(d => d != RunResult.Adaptive).ToArray();

    public Spread Of(string deployment, string metric)
    {
        var m = Metrics.Single(x => x.Name == metric);
        return Spread.Of(Runs.Where(r => r.Deployment == deployment).Select(r => m.Value(r.Metrics)));
    }

    public IReadOnlyList<Verdict> Verdicts() =>
        (from s in Statics
         from m in Metrics.Where(m => VerdictMetrics.Contains(m.Name))
         select Verdict.Of(m.Name, s, Of(RunResult.Adaptive, m.Name), Of(s, m.Name), m.LowerIsBetter)).ToArray();

    /// <summary>True when adaptive beat every static deployment on P99 E2E beyond the spread: the issue's target.</summary>
    public bool TargetMet => Statics.Count > 0 && Verdicts().Where(v => v.Metric == "P99 E2E").All(v => v.BeyondSpread);

    public bool LostNone => Runs.All(r => r.Accounting.Ok);

    public int SwitchesPerAdaptiveRunMin => Runs.Where(r => r.IsAdaptive).Select(r => r.NumSwitches).DefaultIfEmpty(0).Min();

    /// <summary>
    /// The machine's 1-minute load average at the end of each replay, with a warning when it
    /// exceeded the cores: one-core devices then share their cores with other work, and the
    /// comparison measures that work as much as the deployments.
    /// </summary>
    public string? LoadLine()
    {
        var loads = Runs.Select(r => r.Metrics.LoadAverage).Where(double.IsFinite).ToArray();
        if (loads.Length == 0) return null;
        int cores = Environment.ProcessorCount;
        var inv = CultureInfo.InvariantCulture;
        string range = string.Create(inv, $"machine load average at the end of the replays: {loads.Min():F1}..{loads.Max():F1} on {cores} cores");
        // The demo itself keeps about two threads busy; beyond cores + 1 something else competes.
        return loads.Max() > cores + 1
            ? $"  {range}: OTHER WORK WAS RUNNING, so these timings say little about the deployments (rerun on an idle machine)"
            : $"  {range}";
    }

    public string Render()
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        int repeats = Runs.Count(r => r.IsAdaptive);
        sb.AppendLine(string.Create(inv, $"summary: {Runs[0].Metrics.Sent} requests per replay, {repeats} replay(s) of each deployment, interleaved; " +
            $"switches applied per adaptive replay: {string.Join(", ", Runs.Where(r => r.IsAdaptive).Select(r => r.NumSwitches))}"));
        sb.AppendLine(string.Create(inv, $"  {"metric",-20}") + string.Concat(Deployments.Select(d => string.Create(inv, $" {d,24}"))));
        foreach (var m in Metrics)
        {
            sb.Append(string.Create(inv, $"  {m.Name + " (" + m.Unit + ")",-20}"));
            foreach (var d in Deployments)
            {
                var s = Of(d, m.Name);
                string cell = s.Count > 1 ? string.Create(inv, $"{s.Mean:F0} [{s.Min:F0}..{s.Max:F0}]") : string.Create(inv, $"{s.Mean:F0}");
                sb.Append(string.Create(inv, $" {cell,24}"));
            }
            sb.AppendLine();
        }
        sb.AppendLine("  (mean [min..max] over the replays; the range is the run-to-run spread on this shared machine; long/chat: each request type apart)");
        if (LoadLine() is { } load) sb.AppendLine(load);
        foreach (var v in Verdicts()) sb.AppendLine("  " + v.Describe());
        var e2e = Verdicts().Where(v => v.Metric == "P99 E2E").ToArray();
        sb.AppendLine(TargetMet
            ? "  verdict: adaptive beat BOTH static deployments on P99 E2E, beyond the run-to-run spread"
            : e2e.All(v => v.Better)
                ? "  verdict: adaptive had the lower P99 E2E against both static deployments, but not beyond the spread against " +
                  string.Join(" and ", e2e.Where(v => !v.BeyondSpread).Select(v => v.Static)) + ": not a clear win"
                : "  verdict: adaptive did NOT beat " + string.Join(" and ", e2e.Where(v => !v.Better).Select(v => v.Static)) + " on P99 E2E");
        sb.AppendLine(LostNone
            ? "  no request lost or duplicated: in every replay each request sent completed, and the server finished each once"
            : "  REQUESTS LOST OR DUPLICATED: " + string.Join("; ", Runs.Where(r => !r.Accounting.Ok).Select(r => $"{r.Deployment} #{r.Repeat}: {r.Accounting.Describe()}")));
        return sb.ToString();
    }
}
