using OServe.Contracts;
using OServe.Planner.Planning;

namespace OServe.Engine.Control;

/// <summary>
/// Per-type rate history and the forecast of the next window: what <see cref="PlanController"/> and
/// the cluster's controller grain both keep, one rate per type per closed window.
/// </summary>
public sealed class RateHistory(int numTypes, IRateForecaster forecaster)
{
    private readonly List<double>[] _history = Enumerable.Range(0, numTypes).Select(_ => new List<double>()).ToArray();

    /// <summary>Observed rate (requests/s) per type per closed window: [type][window].</summary>
    public IReadOnlyList<IReadOnlyList<double>> Rates => _history.Select(h => (IReadOnlyList<double>)h.ToArray()).ToArray();

    /// <summary>Closes a window with these rates; returns each type's forecast of the next one (never negative).</summary>
    public double[] Close(IReadOnlyList<double> observed)
    {
        if (observed.Count != _history.Length)
            throw new ArgumentException($"{observed.Count} observed rates for {_history.Length} types");
        for (var j = 0; j < observed.Count; j++) _history[j].Add(observed[j]);
        return _history.Select(h => Math.Max(0, forecaster.Next(h))).ToArray();
    }
}

/// <summary>What one window's planning decided: the planner's plan (null when it failed) and what to do with it.</summary>
public sealed record StepDecision(SwitchDecisionKind Kind, Plan? Proposed, string Reason, double EstSeconds, string Summary);

/// <summary>
/// One window's plan-and-decide, shared by <see cref="PlanController"/> and the cluster's controller
/// (one implementation of the rule): the planner (CP-SAT, priced against the plan in force, its own
/// switch rule inside) is asked for the forecast, and its answer is classified as new replicas
/// (<see cref="SwitchDecisionKind.Switch"/>), the same replicas re-routed beyond the tolerance
/// (<see cref="SwitchDecisionKind.Reroute"/>) or neither (<see cref="SwitchDecisionKind.Keep"/>).
/// </summary>
public static class PlanStep
{
    public const string NoDemand = "no demand forecast: keep the current plan";

    /// <summary>The request types with the forecast rates, each at least <paramref name="minRateRps"/> so every type keeps a route.</summary>
    public static RequestTypeSpec[] Forecast(IEnumerable<RequestTypeSpec> types, IReadOnlyList<double> forecast, double minRateRps) =>
        types.Select((t, j) => t with { RateRps = Math.Round(Math.Max(minRateRps, forecast[j]), 6) }).ToArray();

    /// <summary>Plans <paramref name="request"/> (whose Current is <paramref name="current"/>) and decides; planner errors are a Skip, never thrown.</summary>
    public static StepDecision Decide(Plan current, PlanRequest request, double routingTolerance)
    {
        var result = Planning.plan(request);
        if (result.IsError)
            return new StepDecision(SwitchDecisionKind.Skip, null, "planner: " + string.Join("; ", result.ErrorValue.Select(e => e.ToString())), 0, "");
        var outcome = result.ResultValue;
        var proposed = outcome.Plan;
        var kind = !PlanController.SameReplicas(current, proposed) ? SwitchDecisionKind.Switch
            : !PlanController.SameRouting(current, proposed, routingTolerance) ? SwitchDecisionKind.Reroute
            : SwitchDecisionKind.Keep;
        return new StepDecision(kind, proposed, outcome.SwitchReason, kind == SwitchDecisionKind.Switch ? proposed.Switch?.EstSeconds ?? 0 : 0, outcome.Summary);
    }
}
