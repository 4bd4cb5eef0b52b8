using OServe.Contracts;
using OServe.Planner.CostModel;

namespace OServe.Engine.Control;

/// <summary>What the controller plans with: the hardware, the model, the cost coefficients, and its window.</summary>
public sealed record ControllerOptions
{
    public required Cluster Cluster { get; init; }
    public required ModelCard Model { get; init; }

    /// <summary>Must describe the machine that serves (a profile file, or Engine.Lab's <c>CpuCostCalibration</c>).</summary>
    public required CostCoefficients Coefficients { get; init; }

    /// <summary>Rates and latencies per (replica shape, type) instead of the analytic model on <see cref="Coefficients"/>; null: the analytic model.</summary>
    public IServiceModel? ServiceModel { get; init; }

    /// <summary>Length of an observation window and of the window a plan is made for, seconds.</summary>
    public double WindowS { get; init; } = 15;

    /// <summary>
    /// Plan for the highest forecast of the next this-many windows (1: the next window only). Above
    /// 1 where a switch takes a sizeable part of a window: the plan must fit the load at the time
    /// it is in place, and a ramp is met while its load is still low.
    /// </summary>
    public int ForecastLeadWindows { get; init; } = 1;

    /// <summary>
    /// Looks this many times per window for a surge: when a type's arrivals so far in the window
    /// pass its forecast by <see cref="SurgeSigmas"/> Poisson standard deviations (and at least
    /// <see cref="SurgeMinArrivals"/> arrived), the window closes at once and the controller
    /// re-plans on what it saw, instead of serving the surge on the old plan until the window's
    /// end. 0 (the default): every window runs its full length.
    /// </summary>
    public int SurgeChecksPerWindow { get; init; }

    /// <summary>How far above its forecast a type's count must be to close a window early (see <see cref="SurgeChecksPerWindow"/>).</summary>
    public double SurgeSigmas { get; init; } = 3;

    /// <summary>The fewest arrivals of a type that can close a window early.</summary>
    public int SurgeMinArrivals { get; init; } = 5;

    public Slo Slo { get; init; } = new();
    public PlannerOptions Planner { get; init; } = new() { MaxSolveSeconds = 1.0 };

    /// <summary>Extra planner constraints, e.g. <c>Constraints.maxParallelism</c> (the planner's shipped constraints).</summary>
    public IReadOnlyList<OServe.Planner.Solver.PlannerConstraint> Constraints { get; init; } = [];

    /// <summary>CP-SAT workers; the controller shares the machine with the engine it plans for.</summary>
    public int NumSolverWorkers { get; init; } = 1;

    /// <summary>
    /// A type forecast below this rate (requests/s) is planned at this rate, so every type keeps a
    /// route even after a quiet window.
    /// </summary>
    public double MinTypeRateRps { get; init; } = 0.02;

    /// <summary>Routing weights that differ by less than this are the same routing (no re-route).</summary>
    public double RoutingTolerance { get; init; } = 0.05;

    public void Validate()
    {
        if (!(WindowS > 0) || !double.IsFinite(WindowS)) throw new ArgumentException($"window: must be a positive number of seconds, got {WindowS}");
        if (ForecastLeadWindows < 1) throw new ArgumentException($"forecast lead: must be at least 1 window, got {ForecastLeadWindows}");
        if (NumSolverWorkers < 1) throw new ArgumentException($"solver workers: must be at least 1, got {NumSolverWorkers}");
        if (!(MinTypeRateRps >= 0)) throw new ArgumentException($"min type rate: must be >= 0, got {MinTypeRateRps}");
        if (SurgeChecksPerWindow is < 0 or > 100) throw new ArgumentException($"surge checks: must be 0 (off) to 100 per window, got {SurgeChecksPerWindow}");
        if (!(SurgeSigmas > 0) || !double.IsFinite(SurgeSigmas)) throw new ArgumentException($"surge sigmas: must be a positive number, got {SurgeSigmas}");
        if (SurgeMinArrivals < 1) throw new ArgumentException($"surge min arrivals: must be at least 1, got {SurgeMinArrivals}");
    }
}
