using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Benchmarking;
using OServe.Engine.Control;

namespace OServe.Engine.Demo;

/// <summary>
/// The two replays of one workload: the controller switching live, and the initial plan held fixed.
/// <see cref="NumSwitches"/> and <see cref="NumReroutes"/> count changes the runtime APPLIED;
/// <see cref="Changes"/> are their log lines, <see cref="KeepReasons"/> the planner's reasons for
/// keeping the plan in the other windows.
/// </summary>
public sealed record DemoSummary(BenchResult Adaptive, BenchResult Static, int NumSwitches, int NumReroutes, string FinalPlan, string InitialPlan,
    IReadOnlyList<string> Changes, IReadOnlyList<string> KeepReasons)
{
    /// <summary>Why the planner could not answer differently in any window, when that follows from the setup.</summary>
    public string? WhyNoChange { get; init; }

    public static DemoSummary From(BenchResult adaptive, BenchResult fixedRun, ControllerLog log, Plan initial, Plan final)
    {
        var decisions = log.OfType<SwitchDecisionEvent>().ToDictionary(d => d.Window);
        var applied = log.OfType<SwitchResultEvent>().Where(e => e.Result.Applied).ToArray();
        int Count(SwitchDecisionKind k) => applied.Count(e => decisions.TryGetValue(e.Window, out var d) && d.Kind == k);
        var changes = applied.Select(e => $"window {e.Window} {decisions.GetValueOrDefault(e.Window)?.Kind.ToString().ToLowerInvariant()}: {e.Describe().Trim()}").ToArray();
        var keeps = decisions.Values.Where(d => d.Kind is SwitchDecisionKind.Keep or SwitchDecisionKind.Skip && d.Reason.Length > 0)
            .Select(d => $"window {d.Window}: {d.Reason}").ToArray();
        return new DemoSummary(adaptive, fixedRun, Count(SwitchDecisionKind.Switch), Count(SwitchDecisionKind.Reroute),
            PlanText.Replicas(final) + "; " + PlanText.Routing(final), PlanText.Replicas(initial) + "; " + PlanText.Routing(initial), changes, keeps);
    }

    public bool LostNone => Adaptive.Completed == Adaptive.NumPrompts && Static.Completed == Static.NumPrompts;

    public string Render()
    {
        var inv = CultureInfo.InvariantCulture;
        var rows = new (string Name, double A, double S, bool LowerIsBetter)[]
        {
            ("requests completed", Adaptive.Completed, Static.Completed, false),
            ("requests failed", Adaptive.Failed, Static.Failed, true),
            ("throughput (req/s)", Adaptive.RequestThroughput, Static.RequestThroughput, false),
            ("output tokens/s", Adaptive.OutputThroughput, Static.OutputThroughput, false),
            ("P50 E2E (ms)", Ms(Adaptive, BenchMetric.E2el, 50), Ms(Static, BenchMetric.E2el, 50), true),
            ("P99 E2E (ms)", Ms(Adaptive, BenchMetric.E2el, 99), Ms(Static, BenchMetric.E2el, 99), true),
            ("P50 TTFT (ms)", Ms(Adaptive, BenchMetric.Ttft, 50), Ms(Static, BenchMetric.Ttft, 50), true),
            ("P99 TTFT (ms)", Ms(Adaptive, BenchMetric.Ttft, 99), Ms(Static, BenchMetric.Ttft, 99), true),
        };
        var sb = new System.Text.StringBuilder();
        sb.AppendLine(string.Create(inv, $"summary: {Adaptive.NumPrompts} requests replayed twice; {NumSwitches} switches, {NumReroutes} re-routes applied live"));
        sb.AppendLine($"  initial plan (held fixed in the static run): {InitialPlan}");
        sb.AppendLine($"  final plan of the adaptive run:              {FinalPlan}");
        sb.AppendLine(string.Create(inv, $"  {"metric",-20} {"adaptive",12} {"static",12} {"static/adaptive",16}"));
        foreach (var (name, a, s, lower) in rows)
        {
            var ratio = a == 0 ? double.NaN : s / a;
            sb.AppendLine(string.Create(inv, $"  {name,-20} {a,12:F2} {s,12:F2} {ratio,16:F3}"));
        }
        sb.AppendLine("  (ratio > 1 on latency rows means the switches lowered it; < 1 on throughput rows means they raised it)");
        foreach (var c in Changes) sb.AppendLine("  " + c);
        if (NumSwitches == 0 && NumReroutes == 0)
        {
            sb.AppendLine("  the controller never changed the plan, so both runs served the same deployment: the differences above are run-to-run noise");
            foreach (var k in KeepReasons.TakeLast(3)) sb.AppendLine("  planner kept the plan, " + k);
            if (WhyNoChange is not null) sb.AppendLine("  why: " + WhyNoChange);
        }
        sb.AppendLine(LostNone ? "  no request lost: completed == sent in both runs" : "  REQUESTS LOST: completed != sent");
        return sb.ToString();
    }

    private static double Ms(BenchResult r, BenchMetric m, double p) =>
        r.Summaries.TryGetValue(m, out var s) ? s.PercentileMs(p) : double.NaN;
}
