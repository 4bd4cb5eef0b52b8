using ScottPlot;

namespace OServe.Engine.Simulation;

/// <summary>
/// The comparison's plots (ScottPlot, PNG): arrival rate per type over time with the switches,
/// GPUs per replica shape over time (the plan switches), P99 end-to-end latency per window, and
/// the end-to-end latency CDF of every system. Every plot keeps its axes at or above zero, puts its
/// legend beside the data (never over the last points), tells systems apart by marker and dash and
/// names the ones whose curves coincide, and says in its legend how many requests exceeded the
/// model's context.
/// </summary>
public static class PlotWriter
{
    private const int Width = 1150, Height = 520;

    private static readonly MarkerShape[] Markers =
        [MarkerShape.FilledCircle, MarkerShape.OpenSquare, MarkerShape.FilledTriangleUp, MarkerShape.OpenDiamond, MarkerShape.Cross, MarkerShape.Asterisk, MarkerShape.OpenCircle];

    private static readonly LinePattern[] Patterns = [LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed];

    public static void WriteAll(string dir, ScenarioWorkload w, IReadOnlyList<SystemResult> results)
    {
        if (results.Count == 0) return;
        var lead = results.FirstOrDefault(r => r.Plans.System == ServingSystem.OServe) ?? results[0];
        Rates(Path.Combine(dir, "rate-per-type.png"), w, lead);
        Switches(Path.Combine(dir, "plan-switches.png"), w, lead);
        P99OverTime(Path.Combine(dir, "p99-e2e-over-time.png"), w, results);
        Cdf(Path.Combine(dir, "e2e-cdf.png"), w, results);
    }

    /// <summary>
    /// Windows that lie wholly within the trace: the last, partial one holds only the arrivals of
    /// its first seconds, and its rate over a whole window would be drawn as a drop to zero.
    /// </summary>
    public static List<WindowMetrics> FullWindows(IReadOnlyList<WindowMetrics> windows, double windowS, double durationS) =>
        windows.Where(x => x.StartS + windowS <= durationS + 1e-9).ToList();

    /// <summary>For each series, the index of an earlier series with exactly the same points, or -1.</summary>
    public static int[] SameAsEarlier(IReadOnlyList<(double[] Xs, double[] Ys)> series)
    {
        var same = new int[series.Count];
        for (int i = 0; i < series.Count; i++)
        {
            same[i] = -1;
            for (int k = 0; k < i && same[i] < 0; k++)
                if (series[k].Xs.SequenceEqual(series[i].Xs) && series[k].Ys.SequenceEqual(series[i].Ys))
                    same[i] = same[k] >= 0 ? same[k] : k;
        }
        return same;
    }

    /// <summary>An upper axis limit a little above the largest finite value (1 when there is none), so the axis starts at 0 and is never empty.</summary>
    public static double Top(IEnumerable<double> values)
    {
        double max = values.Where(double.IsFinite).DefaultIfEmpty(0).Max();
        return max > 0 ? max * 1.08 : 1;
    }

    private static void Rates(string path, ScenarioWorkload w, SystemResult lead)
    {
        var plot = new Plot();
        double windowS = w.Scenario.Workload.WindowS;
        var windows = FullWindows(lead.Report.Windows, windowS, w.DurationS);
        double[] xs = windows.Select(x => x.StartS / 60).ToArray();
        double top = 0;
        for (int j = 0; j < w.Types.Length; j++)
        {
            int type = j;
            var ys = windows.Select(x => type < x.ArrivalRatePerType.Length ? x.ArrivalRatePerType[type] : 0).ToArray();
            top = Math.Max(top, Top(ys));
            var line = plot.Add.Scatter(xs, ys);
            var t = w.Types[j];
            int over = j < w.OverContextPerType.Length ? w.OverContextPerType[j] : 0;
            line.LegendText = $"t{t.Id} (in {t.MeanInputTokens:F0}, out {t.MeanOutputTokens:F0}{(over > 0 ? $"; {over} over ctx" : "")})";
            Style(line, j, markerSize: 3);
        }
        MarkSwitches(plot, lead.Report);
        Finish(plot, w, $"{w.Scenario.Name}: arrivals per type, full {windowS:F0} s windows (dashed: {lead.Plans.Label} switches)",
            "requests / s", xs.DefaultIfEmpty(0).Max() + windowS / 60, top);
        plot.SavePng(path, Width, Height);
    }

    private static void Switches(string path, ScenarioWorkload w, SystemResult lead)
    {
        var plot = new Plot();
        var plans = lead.Plans.Plans;
        var shapes = plans.SelectMany(p => p.Replicas.Select(r => r.ConfigKey)).Distinct().Order().ToList();
        double end = Math.Max(w.DurationS, plans[^1].Window.StartS + plans[^1].Window.LengthS) / 60;
        double top = 0;
        for (int s = 0; s < shapes.Count; s++)
        {
            var shape = shapes[s];
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
            top = Math.Max(top, Top(ys));
            var line = plot.Add.Scatter(xs.ToArray(), ys.ToArray());
            line.LegendText = shape;
            Style(line, s, markerSize: 0);
        }
        MarkSwitches(plot, lead.Report);
        Finish(plot, w, $"{lead.Plans.Label}: GPUs per replica shape over time (dashed: switches)", "GPUs", end, top);
        plot.SavePng(path, Width, Height);
    }

    private static void P99OverTime(string path, ScenarioWorkload w, IReadOnlyList<SystemResult> results)
    {
        var plot = new Plot();
        var series = results.Select(r =>
        {
            var windows = r.Report.Windows.Where(x => x.NumArrivals > 0 && double.IsFinite(x.P99E2e)).ToList();
            return (Xs: windows.Select(x => x.StartS / 60).ToArray(), Ys: windows.Select(x => x.P99E2e).ToArray());
        }).ToList();
        AddSystems(plot, results, series, markerSize: 5);
        double right = series.SelectMany(s => s.Xs).DefaultIfEmpty(0).Max() + w.Scenario.Workload.WindowS / 60;
        Finish(plot, w, $"{w.Scenario.Name}: P99 end-to-end latency per {w.Scenario.Workload.WindowS:F0} s window (by arrival)",
            "P99 E2E (s)", right, Top(series.SelectMany(s => s.Ys)));
        plot.SavePng(path, Width, Height);
    }

    private static void Cdf(string path, ScenarioWorkload w, IReadOnlyList<SystemResult> results)
    {
        var plot = new Plot();
        var series = results.Select(r =>
        {
            var sorted = r.Report.SortedE2e;
            int n = Math.Min(2000, sorted.Length);
            var xs = new double[n];
            var ys = new double[n];
            for (int i = 0; i < n; i++)
            {
                int at = (int)((long)i * (sorted.Length - 1) / Math.Max(1, n - 1));
                xs[i] = sorted[at];
                ys[i] = (at + 1.0) / sorted.Length;
            }
            return (Xs: xs, Ys: ys);
        }).ToList();
        AddSystems(plot, results, series, markerSize: 0);
        Finish(plot, w, "End-to-end latency CDF", "fraction of requests", Top(series.SelectMany(s => s.Xs)), 1.02, xLabel: "E2E latency (s)");
        plot.SavePng(path, Width, Height);
    }

    /// <summary>One line per system, each with its own marker and dash; a system whose curve equals an earlier one's says so in the legend.</summary>
    private static void AddSystems(Plot plot, IReadOnlyList<SystemResult> results, List<(double[] Xs, double[] Ys)> series, float markerSize)
    {
        var same = SameAsEarlier(series);
        for (int i = 0; i < results.Count; i++)
        {
            if (series[i].Xs.Length == 0) continue;
            var line = plot.Add.Scatter(series[i].Xs, series[i].Ys);
            line.LegendText = same[i] >= 0 ? $"{results[i].Plans.Label} (same as {results[same[i]].Plans.Label})" : results[i].Plans.Label;
            Style(line, i, markerSize);
        }
    }

    private static void Style(ScottPlot.Plottables.Scatter line, int index, float markerSize)
    {
        line.LinePattern = Patterns[index % Patterns.Length];
        line.LineWidth = 1.5f;
        line.MarkerShape = Markers[index % Markers.Length];
        line.MarkerSize = markerSize;
    }

    /// <summary>Titles, axes from 0 (time and values are never negative), the context note, and the legend to the right of the data.</summary>
    private static void Finish(Plot plot, ScenarioWorkload w, string title, string yLabel, double right, double top, string xLabel = "time (min)")
    {
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.Axes.SetLimits(0, right > 0 ? right : 1, 0, top > 0 ? top : 1);
        plot.Legend.ManualItems.Add(new LegendItem
        {
            LabelText = $"{w.NumOverContext}/{w.Context.NumRequests} requests over the {w.Model.MaxContext}-token context ({w.Context.Action})",
            MarkerShape = MarkerShape.None,
            LineWidth = 0,
        });
        plot.ShowLegend(Edge.Right);
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
