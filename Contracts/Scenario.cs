namespace OServe.Contracts;

public enum PlannerKind { Cpsat, Static, PaperHeuristic }

public enum SwitchMode { Hot, Reload }

/// <summary>Planner options a scenario may set; every field has a default.</summary>
public sealed record PlannerOptions
{
    public PlannerKind Kind { get; init; } = PlannerKind.Cpsat;
    /// <summary>Target utilization: routed load stays under rho times capacity.</summary>
    public double Rho { get; init; } = 0.85;
    /// <summary>
    /// The solver's work budget over all its stages, in CP-SAT deterministic seconds (a count of
    /// solver operations scaled to about one second of one core). Not wall time: a loaded or slower
    /// machine takes longer and returns the same plan.
    /// </summary>
    public double MaxSolveSeconds { get; init; } = 1.0;
    /// <summary>Optional wall-clock guard per solver stage, seconds; a stage it stops is reported as machine-dependent.</summary>
    public double? MaxWallSeconds { get; init; }
    public SwitchMode Switching { get; init; } = SwitchMode.Hot;
    public int? MaxTp { get; init; }
    /// <summary>
    /// A switch for more requests served must serve at least this much more (relative) than the
    /// plan in force; closer is "the same" and only a latency gain can justify a switch. Raise it
    /// when windows are short and their forecasts hold few requests (noisy).
    /// </summary>
    public double MinSwitchServedGain { get; init; } = 0.005;
    /// <summary>
    /// A switch between plans that serve the same must lower the estimated mean latency by at least
    /// this much (relative). Raise it with short, noisy windows: a forecast of a few requests moves
    /// by tens of percent from one window to the next, and each plan then looks faster in turn.
    /// </summary>
    public double MinSwitchLatencyGain { get; init; } = 0.05;
    /// <summary>
    /// Widens <see cref="MinSwitchServedGain"/> to this many standard deviations of the window's
    /// request count (Poisson: a window forecast at rate r over w seconds is uncertain by
    /// sqrt(r / w) requests/s), so a served gain within the noise of a few requests is not taken
    /// as evidence. 0 (the default) leaves the tolerance as set; windows of minutes hold thousands
    /// of requests, where it would change nothing.
    /// </summary>
    public double MinSwitchGainSigmas { get; init; }
}

/// <summary>
/// A runnable experiment: cluster + model + workload + SLO + planner options. Cluster and model
/// are references: a path (relative to the scenario file) or a built-in name.
/// </summary>
public sealed record Scenario
{
    public required string Name { get; init; }
    public string? Description { get; init; }
    public required string Cluster { get; init; }
    public required string Model { get; init; }
    public required Workload Workload { get; init; }
    public Slo Slo { get; init; } = new();
    public PlannerOptions Planner { get; init; } = new();
    /// <summary>Built-in constraints every planner and candidate plan keeps (README-constraints.md).</summary>
    public IReadOnlyList<ConstraintSpec> Constraints { get; init; } = [];
}
