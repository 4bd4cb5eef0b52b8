using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Control;

namespace OServe.Engine.Demo;

/// <summary>
/// Reads the controller's log of an adaptive run back as the changes it applied, each with what
/// led to it: the window's forecast, the deployments the planner weighed (each planned alone for
/// that forecast), the one it chose, and the gain it expected.
/// </summary>
public static class SwitchExplainer
{
    /// <summary>A change the runtime applied: the window's forecast, the decision, and the plans before and after.</summary>
    public sealed record AppliedChange(int Window, double AtS, SwitchDecisionKind Kind, ForecastEvent? Forecast, SwitchDecisionEvent Decision,
        SwitchResultEvent Result, Plan? Proposed);

    public static IReadOnlyList<AppliedChange> Applied(ControllerLog log)
    {
        var events = log.Events;
        var list = new List<AppliedChange>();
        foreach (var r in events.OfType<SwitchResultEvent>().Where(r => r.Result.Applied))
        {
            var decision = events.OfType<SwitchDecisionEvent>().LastOrDefault(d => d.Window == r.Window);
            if (decision is null) continue;
            list.Add(new AppliedChange(r.Window, r.AtS, decision.Kind, events.OfType<ForecastEvent>().LastOrDefault(f => f.Window == r.Window),
                decision, r, events.OfType<PlanEvent>().LastOrDefault(p => p.Window == r.Window)?.Proposed));
        }
        return list;
    }

    /// <summary>
    /// Lines for every replica change of <paramref name="run"/>; <paramref name="candidates"/>
    /// gives the planner's estimate of each deployment for a forecast (null: not shown).
    /// </summary>
    public static IEnumerable<string> Explain(RunResult run, Func<IReadOnlyList<double>, IReadOnlyList<DemoPlanning.Candidate>>? candidates)
    {
        if (run.Log is null) yield break;
        var inv = CultureInfo.InvariantCulture;
        var before = run.Initial;
        int n = 0;
        foreach (var c in Applied(run.Log))
        {
            var after = c.Proposed ?? before;
            if (c.Kind != SwitchDecisionKind.Switch)
            {
                before = after;
                continue;
            }
            n++;
            yield return string.Create(inv,
                $"switch {n} of {run.Deployment} #{run.Repeat} at {c.AtS:F1} s (window {c.Window}): {PlanText.Replicas(before)} -> {PlanText.Replicas(after)}");
            if (c.Forecast is { } f)
                yield return "  forecast for the next window: " + string.Join(", ", f.TypeNames.Select((t, j) => string.Create(inv, $"{t} {f.Forecast[j]:F2}"))) +
                    " req/s (observed " + string.Join(", ", f.TypeNames.Select((t, j) => string.Create(inv, $"{t} {f.Observed[j]:F2}"))) + ")";
            if (c.Forecast is { } fc && candidates is not null)
            {
                var listed = candidates(fc.Forecast);
                foreach (var line in Candidates(listed, PlanText.Replicas(before), PlanText.Replicas(after)))
                    yield return line;
                // The planner may answer with neither listed shape (one tp1 replica when one suffices).
                if (listed.All(k => k.Shape != PlanText.Replicas(after)) && after.Predicted is { } p)
                    yield return string.Create(inv,
                        $"  the planner's {PlanText.Replicas(after),-8}: serves {p.ServedRps,6:F2} of {p.DemandRps:F2} req/s, mean latency {(p.MeanLatencyS ?? double.NaN) * 1e3,6:F0} ms  <- chosen");
            }
            yield return "  expected gain: " + (c.Decision.Reason.Length > 0 ? c.Decision.Reason : "(no reason given)") +
                string.Create(inv, $"; switch estimated at {c.Decision.EstSeconds:F3} s");
            yield return string.Create(inv, $"  applied in {c.Result.Result.Seconds:F2} s: {c.Result.Result.Detail}");
            before = after;
        }
        if (n == 0)
        {
            yield return $"{run.Deployment} #{run.Repeat}: no switch applied; it served {PlanText.Replicas(run.Initial)} throughout";
            // What the planner saw at the busiest forecast: why even that did not move it.
            var busiest = run.Log.OfType<ForecastEvent>().MaxBy(f => f.Forecast.Sum());
            if (busiest is not null && candidates is not null)
            {
                yield return string.Create(inv, $"  at its busiest forecast (window {busiest.Window}: ") +
                    string.Join(", ", busiest.TypeNames.Select((t, j) => string.Create(inv, $"{t} {busiest.Forecast[j]:F2}"))) + " req/s) the planner estimated:";
                foreach (var line in Candidates(candidates(busiest.Forecast), PlanText.Replicas(run.Initial), ""))
                    yield return line;
            }
            if (run.Log.OfType<SwitchDecisionEvent>().LastOrDefault(d => d.Window == busiest?.Window) is { Reason.Length: > 0 } d)
                yield return $"  and decided: {d.Kind.ToString().ToLowerInvariant()}, {d.Reason}";
        }
    }

    private static IEnumerable<string> Candidates(IReadOnlyList<DemoPlanning.Candidate> candidates, string running, string chosen) =>
        candidates.Select(k => string.Create(CultureInfo.InvariantCulture,
            $"  candidate {k.Shape,-8}: serves {k.ServedRps,6:F2} of {k.DemandRps:F2} req/s, mean latency {k.MeanLatencyS * 1e3,6:F0} ms") +
            (k.Shape == chosen ? "  <- chosen" : k.Shape == running ? "  (was running)" : ""));
}
