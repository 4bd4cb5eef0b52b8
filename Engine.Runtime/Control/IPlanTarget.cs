using OServe.Contracts;

namespace OServe.Engine.Control;

/// <summary>
/// What the controller drives: a deployment that runs a plan and can move to another one live.
/// The engine's PlanRuntime is the real one; tests use a fake.
/// </summary>
public interface IPlanTarget
{
    /// <summary>The plan now serving (never null once started).</summary>
    Plan Current { get; }

    /// <summary>
    /// Moves to <paramref name="next"/> (replicas kept, started, drained) and returns once it serves;
    /// a failed switch leaves <see cref="Current"/> unchanged and says why in the result.
    /// </summary>
    Task<PlanSwitchResult> ApplyAsync(Plan next, CancellationToken cancellationToken);
}

/// <summary>How a switch went: whether the new plan serves now, its wall time, and a one-line account.</summary>
public sealed record PlanSwitchResult(bool Applied, double Seconds, string Detail);
