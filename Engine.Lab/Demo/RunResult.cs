using OServe.Contracts;
using OServe.Engine.Benchmarking;
using OServe.Engine.Control;

namespace OServe.Engine.Demo;

/// <summary>
/// What the load generator measured in one replay (latencies in ms, NaN when nothing completed),
/// with P99 E2E of each request type apart (long prompts: prompts of at least
/// <c>longPromptTokens</c>), and the machine's load average when it ended (NaN where unknown).
/// </summary>
public sealed record RunMetrics(int Sent, int Completed, double P99TtftMs, double P99E2eMs, double P50E2eMs, double OutputTokensPerS, double DurationS)
{
    public double P99E2eLongMs { get; init; } = double.NaN;
    public double P99E2eChatMs { get; init; } = double.NaN;
    public double LoadAverage { get; init; } = double.NaN;

    public static RunMetrics Of(BenchResult r, int longPromptTokens)
    {
        double Ms(BenchMetric m, double p) => r.Completed > 0 && r.Summaries.TryGetValue(m, out var s) ? s.PercentileMs(p) : double.NaN;
        double P99(Func<RequestOutcome, bool> which) => P99E2eOfMs(r.Outcomes.Where(which));
        return new RunMetrics(r.NumPrompts, r.Completed, Ms(BenchMetric.Ttft, 99), Ms(BenchMetric.E2el, 99), Ms(BenchMetric.E2el, 50), r.OutputThroughput, r.Duration)
        {
            P99E2eLongMs = P99(o => o.PromptLen >= longPromptTokens),
            P99E2eChatMs = P99(o => o.PromptLen < longPromptTokens),
            LoadAverage = MachineLoad.OneMinute(),
        };
    }

    /// <summary>P99 end-to-end latency (ms) of the requests that succeeded; NaN when none did.</summary>
    public static double P99E2eOfMs(IEnumerable<RequestOutcome> outcomes)
    {
        var e2e = outcomes.Where(o => o.Success).Select(o => o.Latency * 1e3).Order().ToArray();
        return e2e.Length == 0 ? double.NaN : BenchMetrics.Percentile(e2e, 99);
    }
}

/// <summary>The machine's 1-minute load average (Linux /proc/loadavg); NaN elsewhere. A replay's timings mean little when it exceeds the cores.</summary>
public static class MachineLoad
{
    public static double OneMinute()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.TryParse(first, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
        }
        catch (IOException) { return double.NaN; }
        catch (UnauthorizedAccessException) { return double.NaN; }
    }
}

/// <summary>One replay of the demo workload on one deployment: the adaptive one (controller on) or a static plan.</summary>
public sealed record RunResult(string Deployment, int Repeat, RunMetrics Metrics, AccountingResult Accounting, ControllerLog? Log, Plan Initial, Plan Final)
{
    public const string Adaptive = "adaptive";

    public bool IsAdaptive => Deployment == Adaptive;

    /// <summary>Changes of replicas the runtime applied (not re-routes).</summary>
    public int NumSwitches => Log is null ? 0 : SwitchExplainer.Applied(Log).Count(a => a.Kind == SwitchDecisionKind.Switch);

    public int NumReroutes => Log is null ? 0 : SwitchExplainer.Applied(Log).Count(a => a.Kind == SwitchDecisionKind.Reroute);
}
