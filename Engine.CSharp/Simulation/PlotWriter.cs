using ScottPlot;
using OServe.Contracts;

namespace OServe.Engine.Simulation;

/// <summary>
/// The comparison's plots (ScottPlot, PNG): arrival rate per type over time with the switches,
/// GPUs per replica shape over time (the plan switches), P99 end-to-end latency per window, and
/// the end-to-end latency CDF of every system.
/// </summary>
public static class PlotWriter
{
    private const int Width = 1000, Height = 520;

    public static void WriteAll(string dir, ScenarioWorkload w, IReadOnlyList<SystemResult> results)
    {
        if (results.Count == 0) return;
        var lead = results.FirstOrDefault(r => r.Plans.System == ServingSystem.OServe) ?? results[0];
        Rates(Path.Combine(dir, "rate-per-type.png"), w, lead);
        Switches(Path.Combine(dir, "plan-switches.png"), w, lead);
        P99OverTime(Path.Combine(dir, "p99-e2e-over-time.png"), w, results);
        Cdf(Path.Combine(dir, "e2e-cdf.png"), results);
    }

    private static void Rates(string path, ScenarioWorkload w, SystemResult lead)
    {
        var plot = new Plot();
        var windows = lead.Report.Windows;
        double[] xs = windows.Select(x => x.StartS / 60).ToArray();
        for (int j = 0; j < w.Types.Length; j++)
        {
            int type = j;
            var line = plot.Add.Scatter(xs, windows.Select(x => type < x.ArrivalRatePerType.Length ? x.ArrivalRatePerType[type] : 0).ToArray());
            var t = w.Types[j];
            line.LegendText = $"t{t.Id} (in {t.MeanInputTokens:F0}, out {t.MeanOutputTokens:F0})";
            line.MarkerSize = 0;
        }
        MarkSwitches(plot, lead.Report);
        plot.Title($"{w.Scenario.Name}: arrival rate per request type (dashed: {lead.Plans.Label} switches)");
        plot.XLabel("time (min)");
        plot.YLabel("requests / s");
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
    }

    private static void Switches(string path, ScenarioWorkload w, SystemResult lead)
    {
        var plot = new Plot();
        var plans = lead.Plans.Plans;
        var shapes = plans.SelectMany(p => p.Replicas.Select(r => r.ConfigKey)).Distinct().Order().ToList();
        double end = Math.Max(w.DurationS, plans[^1].Window.StartS + plans[^1].Window.LengthS) / 60;
        foreach (var shape in shapes)
        {
            var xs = new List<double>();
            var ys = new List<double>();
            for (int i = 0; i < plans.Count; i++)
            {
                double gpus = plans[i].Replicas.Where(r => r.ConfigKey == shape).Sum(r => r.Devices.Count);
                double start = i == 0 ? 0 : plans[i].Window.StartS / 60;
                double stop = i + 1 < plans.Count ? plans[i + 1].Window.StartS / 60 : end;
                xs.Add(start); ys.Add(gpus);
                xs.Add(stop); ys.Add(gpus);
            }
            var line = plot.Add.Scatter(xs.ToArray(), ys.ToArray());
            line.LegendText = shape;
            line.MarkerSize = 0;
        }
        MarkSwitches(plot, lead.Report);
        plot.Title($"{lead.Plans.Label}: GPUs per replica shape over time (dashed: switches)");
        plot.XLabel("time (min)");
        plot.YLabel("GPUs");
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
    }

    private static void P99OverTime(string path, ScenarioWorkload w, IReadOnlyList<SystemResult> results)
    {
        var plot = new Plot();
        foreach (var r in results)
        {
            var windows = r.Report.Windows.Where(x => x.NumArrivals > 0).ToList();
            var line = plot.Add.Scatter(windows.Select(x => x.StartS / 60).ToArray(), windows.Select(x => x.P99E2e).ToArray());
            line.LegendText = r.Plans.Label;
            line.MarkerSize = 3;
        }
        plot.Title($"{w.Scenario.Name}: P99 end-to-end latency per {w.Scenario.Workload.WindowS:F0} s window (by arrival)");
        plot.XLabel("time (min)");
        plot.YLabel("P99 E2E (s)");
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
    }

    private static void Cdf(string path, IReadOnlyList<SystemResult> results)
    {
        var plot = new Plot();
        foreach (var r in results)
        {
            var sorted = r.Report.SortedE2e;
            if (sorted.Length == 0) continue;
            int n = Math.Min(2000, sorted.Length);
            var xs = new double[n];
            var ys = new double[n];
            for (int i = 0; i < n; i++)
            {
                int at = (int)((long)i * (sorted.Length - 1) / Math.Max(1, n - 1));
                xs[i] = sorted[at];
                ys[i] = (at + 1.0) / sorted.Length;
            }
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = r.Plans.Label;
            line.MarkerSize = 0;
        }
        plot.Title("End-to-end latency CDF");
        plot.XLabel("E2E latency (s)");
        plot.YLabel("fraction of requests");
        plot.ShowLegend();
        plot.SavePng(path, Width, Height);
    }

    private static void MarkSwitches(Plot plot, SimulationReport report)
    {
        foreach (var s in report.Switches.Where(s => s.NumNew > 0 || s.NumRemoved > 0))
        {
            var line = plot.Add.VerticalLine(s.StartS / 60);
            line.LinePattern = LinePattern.Dashed;
            line.Color = Colors.Gray;
        }
    }
}
