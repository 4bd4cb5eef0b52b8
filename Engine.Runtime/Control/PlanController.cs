using System.Diagnostics;
using OServe.Contracts;
using OServe.Planner.Planning;

namespace OServe.Engine.Control;

/// <summary>
/// The online loop of OServe: every window it closes the arrival counts per request type, forecasts
/// the next window per type, asks the CP-SAT planner for a plan given the one running, and applies
/// it when the planner says so.
/// </summary>
/// <remarks>
/// Switch rule (the planner's own, see SwitchPlanner.decide, called inside Planning.plan with the
/// current plan): a new deployment is taken when the extra requests it serves over the window,
/// (served_new - served_current) * window, exceed the requests lost while the replaced replicas
/// are offline, their served rate * the switch's est_seconds; when both serve the same it is taken
/// only for a mean-latency gain above 5% with a switch shorter than a tenth of the window.
/// Otherwise the planner returns the current replicas re-routed for the forecast. The controller
/// applies the planner's answer: new replicas = <see cref="SwitchDecisionKind.Switch"/>, same
/// replicas with routing moved by more than <see cref="ControllerOptions.RoutingTolerance"/> =
/// <see cref="SwitchDecisionKind.Reroute"/>, else <see cref="SwitchDecisionKind.Keep"/>.
/// </remarks>
public sealed class PlanController
{
    private readonly IPlanTarget _target;
    private readonly ControllerOptions _options;
    private readonly ArrivalRecorder _recorder;
    private readonly RateHistory _history;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _window;
    private double[]? _lastForecast;

    public PlanController(IPlanTarget target, ControllerOptions options, ArrivalRecorder recorder, ControllerLog log, IRateForecaster? forecaster = null)
    {
        options.Validate();
        _target = target;
        _options = options;
        _recorder = recorder;
        Log = log;
        var planTypes = target.Current.RequestTypes.Select(t => t.Name).ToArray();
        if (!planTypes.SequenceEqual(recorder.TypeNames))
            throw new ArgumentException($"the recorder types ({string.Join(",", recorder.TypeNames)}) are not the plan's ({string.Join(",", planTypes)})");
        _history = new RateHistory(recorder.TypeNames.Count, forecaster ?? new SmoothingRateForecaster(leadWindows: options.ForecastLeadWindows));
    }

    public ControllerLog Log { get; }

    /// <summary>Observed rate (requests/s) per type per closed window: [type][window].</summary>
    public IReadOnlyList<IReadOnlyList<double>> History => _history.Rates;

    public int NumSwitches { get; private set; }

    /// <summary>
    /// Runs a step every window until cancelled, and with <see cref="ControllerOptions.SurgeChecksPerWindow"/>
    /// as soon as a surge shows within one. Planning errors are logged, never thrown.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        int checks = Math.Max(1, _options.SurgeChecksPerWindow);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_options.WindowS / checks));
        var last = _clock.Elapsed.TotalSeconds;
        int ticks = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var now = _clock.Elapsed.TotalSeconds;
                if (++ticks < checks && !SurgeSeen(now - last)) continue;
                await StepAsync(now - last, cancellationToken);
                last = now; // the step took this window's counts at about now: the next window starts here
                ticks = 0;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { }
    }

    private bool SurgeSeen(double elapsedS)
    {
        if (_lastForecast is not { } forecast || !(elapsedS > 0)) return false;
        var counts = _recorder.PeekCounts();
        int j = SurgeType(counts, forecast, elapsedS, _options.SurgeSigmas, _options.SurgeMinArrivals);
        if (j < 0) return false;
        Log.Append(new SurgeEvent(Now, _window, _recorder.TypeNames[j], counts[j], forecast[j] * elapsedS, elapsedS));
        return true;
    }

    /// <summary>
    /// The first type whose count in <paramref name="elapsedS"/> seconds is at least
    /// <paramref name="minArrivals"/> and above its forecast count mu by more than
    /// <paramref name="sigmas"/> x sqrt(max(mu, 1)) (a Poisson count's deviation); -1 when none.
    /// </summary>
    public static int SurgeType(IReadOnlyList<long> counts, IReadOnlyList<double> forecast, double elapsedS, double sigmas, int minArrivals)
    {
        for (int j = 0; j < counts.Count; j++)
        {
            double mu = Math.Max(0, forecast[j]) * elapsedS;
            if (counts[j] >= minArrivals && counts[j] > mu + sigmas * Math.Sqrt(Math.Max(mu, 1))) return j;
        }
        return -1;
    }

    /// <summary>Closes a window of <paramref name="elapsedS"/> seconds, forecasts, plans and maybe switches.</summary>
    public async Task<SwitchDecisionKind> StepAsync(double elapsedS, CancellationToken cancellationToken)
    {
        if (!(elapsedS > 0)) throw new ArgumentOutOfRangeException(nameof(elapsedS), elapsedS, "a window lasts a positive time");
        var window = _window++;
        var counts = _recorder.TakeCounts();
        var observed = counts.Select(c => c / elapsedS).ToArray();
        var forecast = _history.Close(observed);
        _lastForecast = forecast;
        Log.Append(new ForecastEvent(Now, window, _recorder.TypeNames, observed, forecast));

        if (forecast.Sum() <= 0)
            return Decide(window, SwitchDecisionKind.Skip, PlanStep.NoDemand, 0);

        var current = _target.Current;
        var request = BuildRequest(current, forecast, window);
        var solveStart = _clock.Elapsed.TotalSeconds;
        var step = await Task.Run(() => PlanStep.Decide(current, request, _options.RoutingTolerance), cancellationToken);
        var solveSeconds = _clock.Elapsed.TotalSeconds - solveStart;
        if (step.Proposed is not { } proposed)
            return Decide(window, step.Kind, step.Reason, 0);

        Log.Append(new PlanEvent(Now, window, proposed, solveSeconds, step.Summary));
        var kind = step.Kind;
        Decide(window, kind, step.Reason, step.EstSeconds);
        if (kind == SwitchDecisionKind.Keep) return kind;

        var applied = await _target.ApplyAsync(proposed, cancellationToken);
        if (applied.Applied && kind == SwitchDecisionKind.Switch) NumSwitches++;
        Log.Append(new SwitchResultEvent(Now, window, current.Version, proposed.Version, applied));
        return kind;
    }

    private double Now => _clock.Elapsed.TotalSeconds;

    private SwitchDecisionKind Decide(int window, SwitchDecisionKind kind, string reason, double estSeconds)
    {
        Log.Append(new SwitchDecisionEvent(Now, window, kind, reason, estSeconds));
        return kind;
    }

    private PlanRequest BuildRequest(Plan current, double[] forecast, int window)
    {
        var types = PlanStep.Forecast(current.RequestTypes, forecast, _options.MinTypeRateRps);
        return new PlanRequest(_options.Cluster, _options.Model, types)
        {
            Slo = _options.Slo,
            Options = _options.Planner,
            Coefficients = _options.Coefficients,
            ServiceModel = _options.ServiceModel,
            Constraints = _options.Constraints.ToArray(),
            NumWorkers = _options.NumSolverWorkers,
            Current = current,
            WindowStartS = (window + 1) * _options.WindowS,
            WindowS = _options.WindowS,
        };
    }

    /// <summary>Same replica ids on the same devices with the same TP and PP.</summary>
    public static bool SameReplicas(Plan a, Plan b)
    {
        static string Key(ReplicaSpec r) => $"{r.Id}|{r.Tp}|{r.Pp}|{string.Join(",", r.Devices)}";
        return a.Replicas.Select(Key).Order().SequenceEqual(b.Replicas.Select(Key).Order());
    }

    /// <summary>Every routing weight of every type within <paramref name="tolerance"/>, after normalizing each type's weights.</summary>
    public static bool SameRouting(Plan a, Plan b, double tolerance)
    {
        static Dictionary<string, double> Norm(RoutingEntry? e)
        {
            if (e is null) return [];
            var total = e.Weights.Values.Sum();
            return total <= 0 ? [] : e.Weights.ToDictionary(kv => kv.Key, kv => kv.Value / total);
        }
        foreach (var type in a.RequestTypes.Select(t => t.Name).Union(b.RequestTypes.Select(t => t.Name)))
        {
            var wa = Norm(a.Routing.FirstOrDefault(r => r.Type == type));
            var wb = Norm(b.Routing.FirstOrDefault(r => r.Type == type));
            foreach (var id in wa.Keys.Union(wb.Keys))
                if (Math.Abs(wa.GetValueOrDefault(id) - wb.GetValueOrDefault(id)) > tolerance) return false;
        }
        return true;
    }
}
