using OServe.Contracts;
using OServe.Engine.Benchmarking;
using OServe.Engine.Control;

namespace OServe.Engine.Demo;

/// <summary>What the load generator measured in one replay (latencies in ms, NaN when nothing completed).</summary>
public sealed record RunMetrics(int Sent, int Completed, double P99TtftMs, double P99E2eMs, double P50E2eMs, double OutputTokensPerS, double DurationS)
{
    public static RunMetrics Of(BenchResult r)
    {
        double Ms(BenchMetric m, double p) => r.Completed > 0 && r.Summaries.TryGetValue(m, out var s) ? s.PercentileMs(p) : double.NaN;
        return new RunMetrics(r.NumPrompts, r.Completed, Ms(BenchMetric.Ttft, 99), Ms(BenchMetric.E2el, 99), Ms(BenchMetric.E2el, 50), r.OutputThroughput, r.Duration);
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
