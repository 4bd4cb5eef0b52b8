using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Control;
using Orleans;

namespace OServe.Engine.Distributed;

/// <summary>The forecasting controller loop across the cluster (opt-in: <see cref="ControllerSettings.Loop"/>).</summary>
public sealed record LoopSettings
{
    /// <summary>The hardware, model card, cost model and planner options it plans with (the same inputs a re-plan uses).</summary>
    public required ReplanSettings Planning { get; init; }

    /// <summary>Length of an observation window and of the window a plan is made for.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Routing weights that differ by less than this are the same routing (no re-route), as in <see cref="ControllerOptions.RoutingTolerance"/>.</summary>
    public double RoutingTolerance { get; init; } = 0.05;
}

/// <summary>One window of the loop: what was observed and forecast, and what was decided; shown in GET /v1/cluster (<c>loop</c>) and the controller's log.</summary>
[GenerateSerializer, Immutable]
public sealed record LoopRecord(
    [property: Id(0)] int Window,
    [property: Id(1)] string Observed,
    [property: Id(2)] string Forecast,
    [property: Id(3)] string Decision,
    [property: Id(4)] string Reason,
    [property: Id(5)] string Proposed,
    [property: Id(6)] int NumSwitches)
{
    /// <summary>What applying the decision did (epoch, or why it failed and was rolled back); empty when nothing was applied.</summary>
    [Id(7)] public string Outcome { get; init; } = "";

    public string Describe() => $"window {Window}: observed {Observed}; forecast {Forecast}; decision {Decision}" +
        (Reason.Length > 0 ? $" ({Reason})" : "") + (Proposed.Length > 0 ? $"; proposed {Proposed}" : "") + (Outcome.Length > 0 ? $"; {Outcome}" : "");
}

/// <summary>The loop's rate history as the controller grain stores it: observed rates [type][window] and the next window's index.</summary>
[GenerateSerializer, Immutable]
public sealed record LoopHistory(
    [property: Id(0)] string[] Types,
    [property: Id(1)] int NextWindow,
    [property: Id(2)] double[][] Rates);

/// <summary>
/// The cluster controller's side of the single-process <see cref="PlanController"/> loop, with its
/// pieces (<see cref="RateHistory"/>, <see cref="PlanStep"/>): every window, the arrival counts the
/// front ends reported during it, per type, over the window's configured length are the observed
/// rates; the forecast of the next window is planned on the live workers' devices
/// (<see cref="ClusterReplanner.Request"/>) against the plan in force. The decision depends only on
/// the counts, the history and the plan (CP-SAT in deterministic time, a fixed seed; no clock).
/// The history survives the controller's re-activation on another worker: the grain stores
/// <see cref="Snapshot"/> with its plans and hands it back to <see cref="Restore"/> (the counts of a
/// window still open are lost with the worker). Not thread-safe (the controller grain is single-threaded).
/// </summary>
public sealed class ClusterLoop(LoopSettings settings)
{
    /// <summary>Windows of history a snapshot keeps per type (the forecaster's seasons fit many times over).</summary>
    public const int MaxStoredWindows = 1024;

    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    private RateHistory? _history;
    private string[] _types = [];
    private int _window;

    /// <summary>The index the next closed window gets.</summary>
    public int NextWindow => _window;

    /// <summary>The closed windows' observed rates per type (the last <see cref="MaxStoredWindows"/>); null before the first window.</summary>
    public LoopHistory? Snapshot() => _history is null ? null : new LoopHistory(_types, _window,
        _history.Rates.Select(r => r.Skip(Math.Max(0, r.Count - MaxStoredWindows)).ToArray()).ToArray());

    /// <summary>
    /// Continues from a stored history: the next window is numbered after it and forecast from it as
    /// if the loop had never stopped. A history whose shape does not hold together is ignored (the
    /// loop starts afresh, as it would with new request types).
    /// </summary>
    public bool Restore(LoopHistory? stored)
    {
        if (stored is null || stored.Types.Length == 0 || stored.Rates.Length != stored.Types.Length
            || stored.Rates.Any(r => r.Length != stored.Rates[0].Length || r.Any(v => !double.IsFinite(v) || v < 0)) || stored.NextWindow < stored.Rates[0].Length)
            return false;
        var history = new RateHistory(stored.Types.Length, new SmoothingRateForecaster());
        for (int w = 0; w < stored.Rates[0].Length; w++)
            history.Close(stored.Rates.Select(r => r[w]).ToArray());
        (_history, _types, _window) = (history, stored.Types.ToArray(), stored.NextWindow);
        return true;
    }

    /// <summary>Switch decisions so far (whether applied: the record's outcome).</summary>
    public int NumSwitches { get; private set; }

    /// <summary>A front end's report counts in the window it arrives in.</summary>
    public void Add(ArrivalReport report)
    {
        if (report.Types.Length != report.Counts.Length)
            return;
        for (int k = 0; k < report.Types.Length; k++)
            _counts[report.Types[k]] = _counts.GetValueOrDefault(report.Types[k]) + report.Counts[k];
    }

    /// <summary>Closes a window: its record, and the plan to make the target when the decision is a switch or a re-route.</summary>
    public (LoopRecord Record, Plan? Apply) Step(Plan inForce, IReadOnlyList<string> liveNodes) => Decide(Close(inForce), inForce, liveNodes);

    /// <summary>The closed window's counts as rates and the forecast; on the grain's thread, as <see cref="Add"/> is (reports interleave with a step).</summary>
    public (int Window, string[] Types, double[] Observed, double[] Forecast) Close(Plan inForce)
    {
        var types = inForce.RequestTypes.Select(t => t.Name).ToArray();
        if (_history is null || !types.SequenceEqual(_types))
            (_history, _types) = (new RateHistory(types.Length, new SmoothingRateForecaster()), types); // new types: a new history
        var observed = types.Select(t => _counts.GetValueOrDefault(t) / settings.Window.TotalSeconds).ToArray();
        _counts.Clear();
        return (_window++, types, observed, _history.Close(observed));
    }

    /// <summary>Plans the closed window's forecast and decides (the CP-SAT solve: off the grain's thread; touches no count).</summary>
    public (LoopRecord Record, Plan? Apply) Decide((int Window, string[] Types, double[] Observed, double[] Forecast) closed, Plan inForce, IReadOnlyList<string> liveNodes)
    {
        var (window, types, observed, forecast) = closed;
        double windowS = settings.Window.TotalSeconds;
        LoopRecord Record(SwitchDecisionKind kind, string reason, string proposed) =>
            new(window, Rates(types, observed), Rates(types, forecast), kind.ToString().ToLowerInvariant(), reason, proposed, NumSwitches);
        if (forecast.Sum() <= 0)
            return (Record(SwitchDecisionKind.Skip, PlanStep.NoDemand, ""), null);

        var (request, error) = ClusterReplanner.Request(settings.Planning, inForce, inForce, liveNodes, forecast, windowS, (window + 1) * windowS);
        if (request is null)
            return (Record(SwitchDecisionKind.Skip, error!, ""), null);
        var step = PlanStep.Decide(inForce, request, settings.RoutingTolerance);
        if (step.Proposed is not { } proposed)
            return (Record(step.Kind, step.Reason, ""), null);
        if (ClusterReplanner.OffLiveWorkers(proposed, liveNodes) is { } off)
            return (Record(SwitchDecisionKind.Skip, off, ClusterReplanner.Describe(proposed)), null);
        if (step.Kind == SwitchDecisionKind.Switch)
            NumSwitches++;
        var record = Record(step.Kind, step.Reason, $"{proposed.Planner}: {ClusterReplanner.Describe(proposed)}");
        return (record, step.Kind is SwitchDecisionKind.Switch or SwitchDecisionKind.Reroute ? proposed : null);
    }

    private static string Rates(string[] names, double[] rates) =>
        string.Join(", ", names.Select((n, j) => string.Create(CultureInfo.InvariantCulture, $"{n} {rates[j]:0.###}/s")));
}
