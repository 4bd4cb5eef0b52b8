using System.Globalization;
using OServe.Contracts;

namespace OServe.Engine.Control;

/// <summary>One entry of the controller's log; <see cref="AtS"/> is seconds since the controller started.</summary>
public abstract record ControllerEvent(double AtS, int Window)
{
    /// <summary>One line for a log file or the plain-text live view.</summary>
    public abstract string Describe();

    protected static string Rates(IReadOnlyList<string> names, IReadOnlyList<double> rates) =>
        string.Join(" ", names.Select((n, j) => string.Create(CultureInfo.InvariantCulture, $"{n}={rates[j]:F2}")));
}

/// <summary>The window just closed (observed rates per type, requests/s) and the forecast of the next one.</summary>
public sealed record ForecastEvent(double AtS, int Window, IReadOnlyList<string> TypeNames, IReadOnlyList<double> Observed, IReadOnlyList<double> Forecast)
    : ControllerEvent(AtS, Window)
{
    public override string Describe() =>
        $"[{AtS,6:F1}s] window {Window}: observed {Rates(TypeNames, Observed)} req/s; forecast {Rates(TypeNames, Forecast)} req/s";
}

/// <summary>A window closed before its time: <see cref="TypeName"/> arrived <see cref="Count"/> times in <see cref="ElapsedS"/> s where its forecast gave <see cref="Expected"/>.</summary>
public sealed record SurgeEvent(double AtS, int Window, string TypeName, long Count, double Expected, double ElapsedS) : ControllerEvent(AtS, Window)
{
    public override string Describe() =>
        string.Create(CultureInfo.InvariantCulture, $"[{AtS,6:F1}s] window {Window}: surge of {TypeName}, {Count} arrivals in {ElapsedS:F2} s where {Expected:F1} were forecast: closing the window now");
}

/// <summary>What the planner proposed for the next window.</summary>
public sealed record PlanEvent(double AtS, int Window, Plan Proposed, double SolveSeconds, string Summary) : ControllerEvent(AtS, Window)
{
    public override string Describe() =>
        $"[{AtS,6:F1}s] plan v{Proposed.Version}: {PlanText.Replicas(Proposed)}; predicted served {Proposed.Predicted?.ServedRps:F2} of {Proposed.Predicted?.DemandRps:F2} req/s (solve {SolveSeconds:F2} s)";
}

public enum SwitchDecisionKind
{
    /// <summary>Same replicas and routing: nothing to do.</summary>
    Keep,
    /// <summary>Same replicas, new routing weights: applied at once, nothing moves.</summary>
    Reroute,
    /// <summary>Replicas change and the planner says the gain over the window pays for the migration.</summary>
    Switch,
    /// <summary>The planner failed or there was nothing to plan for; the current plan keeps running.</summary>
    Skip,
}

public sealed record SwitchDecisionEvent(double AtS, int Window, SwitchDecisionKind Kind, string Reason, double EstSeconds) : ControllerEvent(AtS, Window)
{
    public override string Describe() =>
        $"[{AtS,6:F1}s] decision: {Kind.ToString().ToLowerInvariant()}" + (EstSeconds > 0 ? $" (est {EstSeconds:F3} s)" : "") + (Reason.Length > 0 ? $": {Reason}" : "");
}

public sealed record SwitchResultEvent(double AtS, int Window, int FromVersion, int ToVersion, PlanSwitchResult Result) : ControllerEvent(AtS, Window)
{
    public override string Describe() =>
        $"[{AtS,6:F1}s] switch v{FromVersion} -> v{ToVersion}: " + (Result.Applied ? $"done in {Result.Seconds:F2} s" : "FAILED, still on the old plan") +
        (Result.Detail.Length > 0 ? $"; {Result.Detail}" : "");
}

/// <summary>Short texts about plans shared by the log and the live view.</summary>
public static class PlanText
{
    /// <summary>"2 x tp1, 1 x tp2" style counts by configuration.</summary>
    public static string Replicas(Plan plan) =>
        plan.Replicas.Count == 0 ? "no replicas"
        : string.Join(", ", plan.Replicas.GroupBy(r => (r.Tp, r.Pp)).OrderBy(g => g.Key.Tp * g.Key.Pp)
            .Select(g => $"{g.Count()} x tp{g.Key.Tp}" + (g.Key.Pp > 1 ? $"/pp{g.Key.Pp}" : "")));

    /// <summary>"chat: r0 0.60 r1 0.40 | long: r1 1.00": each type's share per replica (weights normalized).</summary>
    public static string Routing(Plan plan) =>
        plan.Routing.Count == 0 ? "no routing"
        : string.Join(" | ", plan.Routing.Select(e =>
        {
            var total = e.Weights.Values.Sum();
            return e.Type + ": " + (total <= 0 ? "nowhere" : string.Join(" ", e.Weights.Where(w => w.Value > 0).OrderBy(w => w.Key, StringComparer.Ordinal)
                .Select(w => string.Create(CultureInfo.InvariantCulture, $"{w.Key} {w.Value / total:F2}"))));
        }));
}
