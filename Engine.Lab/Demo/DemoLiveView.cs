using System.Collections.Concurrent;
using System.Globalization;
using OServe.Engine.Benchmarking;
using OServe.Engine.Control;
using OServe.Engine.Execution;
using Spectre.Console;

namespace OServe.Engine.Demo;

/// <summary>
/// What a replay shows while it runs: plan, observed and forecast rates per type, recent latencies,
/// switches. A Spectre.Console Live table on a terminal; otherwise a plain line every few seconds
/// (and, from DemoReplay, a line per switch as it happens).
/// </summary>
public sealed class DemoLiveView(string phase, double durationS, BenchProgress progress, Func<string> plan, ControllerLog? log)
{
    private readonly ConcurrentQueue<RequestMetrics> _recent = new();

    public void OnFinished(RequestMetrics m)
    {
        _recent.Enqueue(m);
        while (_recent.Count > 200) _recent.TryDequeue(out _);
    }

    public async Task RunAsync(TextWriter output, bool interactive, Task until)
    {
        var start = DateTime.UtcNow;
        if (interactive)
        {
            await AnsiConsole.Live(Render(0)).AutoClear(false).StartAsync(async ctx =>
            {
                while (!until.IsCompleted)
                {
                    await Task.WhenAny(until, Task.Delay(500));
                    ctx.UpdateTarget(Render((DateTime.UtcNow - start).TotalSeconds));
                }
            });
            return;
        }
        while (!until.IsCompleted)
        {
            await Task.WhenAny(until, Task.Delay(TimeSpan.FromSeconds(Math.Clamp(durationS / 5, 2, 5))));
            if (!until.IsCompleted) output.WriteLine(Line((DateTime.UtcNow - start).TotalSeconds));
        }
    }

    public string Line(double elapsedS)
    {
        var (ttft, e2e) = Latencies();
        var inv = CultureInfo.InvariantCulture;
        return string.Create(inv, $"[{phase} {elapsedS,5:F0}/{durationS:F0}s] {progress.NumDone}/{progress.NumTotal} done, {progress.NumFailed} failed; plan {plan()}; ") +
            Rates() + string.Create(inv, $"; recent P50 TTFT {ttft * 1e3:F0} ms, E2E {e2e * 1e3:F0} ms; switches {Switches()}");
    }

    private Table Render(double elapsedS)
    {
        var (ttft, e2e) = Latencies();
        var table = new Table().Title($"oserve demo: {phase} run").AddColumn("").AddColumn("");
        table.AddRow("time", $"{elapsedS:F0} / {durationS:F0} s");
        table.AddRow("requests", $"{progress.NumDone} / {progress.NumTotal} done, {progress.NumFailed} failed");
        table.AddRow("plan", Markup.Escape(plan()));
        table.AddRow("rates (req/s)", Markup.Escape(Rates()));
        table.AddRow("recent P50", $"TTFT {ttft * 1e3:F0} ms, E2E {e2e * 1e3:F0} ms");
        table.AddRow("switches", Switches());
        if (log?.Events.LastOrDefault(e => e is SwitchDecisionEvent) is SwitchDecisionEvent d)
            table.AddRow("last decision", Markup.Escape(d.Describe().Trim()));
        return table;
    }

    private string Rates()
    {
        if (log is null) return "static plan, no controller";
        if (log.OfType<ForecastEvent>().LastOrDefault() is not { } f) return "rates: no window closed yet";
        return "observed " + string.Join(" ", f.TypeNames.Select((n, j) => string.Create(CultureInfo.InvariantCulture, $"{n}={f.Observed[j]:F2}"))) +
               ", forecast " + string.Join(" ", f.TypeNames.Select((n, j) => string.Create(CultureInfo.InvariantCulture, $"{n}={f.Forecast[j]:F2}")));
    }

    private string Switches()
    {
        if (log is null) return "none (static plan)";
        var applied = SwitchExplainer.Applied(log);
        return string.Create(CultureInfo.InvariantCulture,
            $"{applied.Count(a => a.Kind == SwitchDecisionKind.Switch)} (and {applied.Count(a => a.Kind == SwitchDecisionKind.Reroute)} re-routes)");
    }

    private (double Ttft, double E2e) Latencies()
    {
        var xs = _recent.ToArray();
        if (xs.Length == 0) return (double.NaN, double.NaN);
        static double Median(IEnumerable<double> v) { var a = v.Order().ToArray(); return a[a.Length / 2]; }
        return (Median(xs.Select(m => m.TimeToFirstToken)), Median(xs.Select(m => m.EndToEndLatency)));
    }
}
