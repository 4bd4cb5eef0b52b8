using System.Globalization;
using OServe.Engine.Simulation;

namespace OServe.Engine.Cli;

/// <summary>Prints simulation results the way vLLM's benchmark_serving does, and comparison tables.</summary>
public static class ReportPrinter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void PrintRun(TextWriter o, ScenarioWorkload w, SystemResult result)
    {
        var r = result.Report;
        var all = r.Overall;
        o.WriteLine($"============ {w.Scenario.Name}: {result.Plans.Label} ============");
        o.WriteLine(F("Trace", w.Trace.Source));
        o.WriteLine(F("Requests", $"{w.Requests.Length}"));
        o.WriteLine(F($"Over the {w.Model.MaxContext}-token context", $"{w.NumOverContext} {w.Context.Action}"));
        o.WriteLine(F("Plans / switches", $"{result.Plans.Plans.Count} / {r.Switches.Count(s => s.NumNew > 0 || s.NumRemoved > 0)}"));
        o.WriteLine(F("Planning time total / max (s)", $"{result.Plans.PlanningSeconds:F2} / {result.Plans.MaxPlanningSeconds:F2}"));
        o.WriteLine(F("Benchmark duration (s)", $"{all.DurationS:F2}"));
        o.WriteLine(F("Request throughput (req/s)", $"{all.RequestThroughput:F2}"));
        o.WriteLine(F("Output token throughput (tok/s)", $"{all.OutputTokenThroughput:F2}"));
        o.WriteLine(F("Total token throughput (tok/s)", $"{all.TotalTokenThroughput:F2}"));
        o.WriteLine(F("Goodput (req/s)", $"{all.Goodput:F2}"));
        o.WriteLine(F("SLO attainment", $"{100 * all.SloAttainment:F2}%"));
        Latency(o, "Time to First Token", "TTFT", all.Ttft);
        Latency(o, "Time per Output Token (excl. 1st token)", "TPOT", all.Tpot);
        Latency(o, "Inter-token Latency", "ITL", all.Itl);
        Latency(o, "End-to-end Latency", "E2EL", all.E2e);
        o.WriteLine("---------------------- per type ----------------------");
        o.WriteLine($"{"type",-6} {"requests",9} {"over ctx",9} {"req/s",8} {"P99 TTFT",9} {"P99 TPOT",9} {"P50 E2E",9} {"P99 E2E",9} {"SLO ok",7}");
        for (int j = 0; j < r.PerType.Count; j++)
        {
            var t = r.PerType[j];
            int over = j < w.OverContextPerType.Length ? w.OverContextPerType[j] : 0;
            o.WriteLine(string.Create(Inv, $"{t.Name,-6} {t.NumRequests,9} {over,9} {t.RequestThroughput,8:F2} {t.Ttft.P99,9:F3} {t.Tpot.P99,9:F4} {t.E2e.Median,9:F2} {t.E2e.P99,9:F2} {100 * t.SloAttainment,6:F1}%"));
        }
        o.WriteLine($"over ctx: {w.ContextLine}");
        o.WriteLine(string.Create(Inv, $"simulated {r.NumEvents} events in {r.WallSeconds:F2} s wall; {r.NumPreemptions} preemptions, {r.NumMigrated} requests migrated"));
        o.WriteLine("==================================================");
    }

    private static void Latency(TextWriter o, string title, string key, LatencyStats s)
    {
        o.WriteLine($"{new string('-', 10)}{title}{new string('-', Math.Max(2, 40 - title.Length))}");
        o.WriteLine(F($"Mean {key} (ms)", $"{1000 * s.Mean:F2}"));
        o.WriteLine(F($"Median {key} (ms)", $"{1000 * s.Median:F2}"));
        o.WriteLine(F($"P90 {key} (ms)", $"{1000 * s.P90:F2}"));
        o.WriteLine(F($"P99 {key} (ms)", $"{1000 * s.P99:F2}"));
    }

    private static string F(string label, string value) => string.Create(Inv, $"{label + ":",-40}{value,12}");

    /// <summary>
    /// One row per system (static shapes: those with a role, i.e. the best, median and worst in
    /// hindsight; the others are in results.json); ratios are the other system's figure over
    /// OServe's (latency) or OServe's over theirs (throughput).
    /// </summary>
    /// <param name="contextLine">How many requests exceeded the model's context and what was done (<see cref="ScenarioWorkload.ContextLine"/>).</param>
    public static void PrintComparison(TextWriter o, IReadOnlyList<SystemResult> results, string? contextLine = null)
    {
        var oserve = results.First(r => r.Plans.System == ServingSystem.OServe).Report.Overall;
        o.WriteLine($"{"system",-22} {"plan s",7} {"switch",6} {"P99 E2E",9} {"mean E2E",9} {"P99 TTFT",9} {"P99 TPOT",9} {"tok/s",9} {"goodput",8} {"SLO ok",7} {"P99 E2E x",10} {"goodput x",10}  role");
        foreach (var r in results.Where(r => r.IsShown))
        {
            var m = r.Report.Overall;
            double latencyRatio = m.E2e.P99 / oserve.E2e.P99;
            double goodputRatio = m.Goodput > 0 ? oserve.Goodput / m.Goodput : double.PositiveInfinity;
            int switches = r.Report.Switches.Count(s => s.NumNew > 0 || s.NumRemoved > 0);
            o.WriteLine(string.Create(Inv,
                $"{r.Plans.Label,-22} {r.Plans.PlanningSeconds,7:F1} {switches,6} {m.E2e.P99,9:F2} {m.E2e.Mean,9:F2} {m.Ttft.P99,9:F2} {m.Tpot.P99,9:F4} {m.OutputTokenThroughput,9:F0} {m.Goodput,8:F2} {100 * m.SloAttainment,6:F1}% {latencyRatio,10:F2} {goodputRatio,10:F2}  {r.Role}"));
        }
        int numStatic = results.Count(r => r.Plans.System == ServingSystem.StaticHomogeneous);
        if (numStatic > 0)
            o.WriteLine($"{numStatic} static shapes simulated: {string.Join(", ", results.Where(r => r.Plans.System == ServingSystem.StaticHomogeneous).OrderBy(r => r.Report.Overall.E2e.P99).Select(r => string.Create(Inv, $"{r.Plans.Label} {r.Report.Overall.E2e.P99:F2}")))} (P99 E2E s)");
        if (contextLine is not null) o.WriteLine($"requests over the context: {contextLine}");
        o.WriteLine("P99 E2E x: that system's P99 end-to-end latency over OServe's (above 1: OServe is faster).");
        o.WriteLine("goodput x: OServe's goodput (requests/s meeting every SLO) over that system's (above 1: OServe serves more within SLO).");
        foreach (var r in results)
            if (r.Plans.Choices is { Count: > 0 } choices)
                o.WriteLine($"{r.Plans.Label} verified plans per window: {Chosen(choices)}");
    }

    /// <summary>
    /// Per window, for OServe and the systems it is measured against (best static, vLLM default):
    /// the deployment each ran (replica shapes), the window's P99 TTFT (its queue) and P99 E2E, so
    /// a missed target can be traced to the windows and plans that caused it.
    /// </summary>
    public static void PrintPerWindow(TextWriter o, IReadOnlyList<SystemResult> results, double windowS)
    {
        var shown = results.Where(r => r.Plans.System is ServingSystem.OServe or ServingSystem.StaticVllmDefault
            || r.Role?.Contains("best static", StringComparison.Ordinal) == true).ToList();
        if (shown.Count == 0) return;
        o.WriteLine("per window: deployment, P99 TTFT (queue) / P99 E2E in seconds");
        o.WriteLine($"{"window",6} {"req/s",6}  " + string.Join("  ", shown.Select(r => $"{r.Plans.Label,-40}")));
        int n = shown.Max(r => r.Report.Windows.Count);
        for (int w = 0; w < n; w++)
        {
            var first = shown.Select(r => r.Report.Windows).FirstOrDefault(ws => w < ws.Count);
            double rate = first is null ? 0 : first[w].ArrivalRatePerType.Sum();
            var cells = shown.Select(r =>
            {
                var plan = r.Plans.Plans[Math.Min(w, r.Plans.Plans.Count - 1)];
                string figures = w < r.Report.Windows.Count && r.Report.Windows[w].NumArrivals > 0
                    ? string.Create(Inv, $"{r.Report.Windows[w].P99Ttft:F2}/{r.Report.Windows[w].P99E2e:F1}") : "-";
                return $"{Shapes(plan) + " " + figures,-40}";
            });
            o.WriteLine(string.Create(Inv, $"{w * windowS / 60,5:F0}m {rate,6:F1}  ") + string.Join("  ", cells));
        }
    }

    /// <summary>A plan's replicas as counts of shapes: "3xtp8 4xtp2".</summary>
    public static string Shapes(OServe.Contracts.Plan plan) =>
        string.Join(" ", plan.Replicas.GroupBy(r => r.Pp > 1 ? $"tp{r.Tp}pp{r.Pp}" : $"tp{r.Tp}").OrderByDescending(g => g.Count()).Select(g => $"{g.Count()}x{g.Key}"));

    /// <summary>The candidate chosen in each window, runs collapsed: "cpsat x2, keep x5".</summary>
    public static string Chosen(IReadOnlyList<WindowChoice> choices)
    {
        var runs = new List<(string Label, int Count)>();
        foreach (var c in choices)
            if (runs.Count > 0 && runs[^1].Label == c.Chosen) runs[^1] = (c.Chosen, runs[^1].Count + 1);
            else runs.Add((c.Chosen, 1));
        return string.Join(", ", runs.Select(r => r.Count > 1 ? $"{r.Label} x{r.Count}" : r.Label));
    }
}
