using OServe.Contracts;

namespace OServe.Engine.Simulation;

/// <summary>Everything one simulated run needs. Plans[0] is deployed (loaded) at time 0; each later plan takes effect at its Window.StartS.</summary>
public sealed record SimulationSetup
{
    /// <summary>Sorted by arrival; request ids are their positions.</summary>
    public required IReadOnlyList<SimRequest> Requests { get; init; }
    public required IReadOnlyList<Plan> Plans { get; init; }
    /// <summary>Scheduler limits (KV blocks from the memory plan) and step time of each replica.</summary>
    public required Func<ReplicaSpec, ReplicaModel> ReplicaModels { get; init; }
    /// <summary>Link and storage costs; needed when a plan changes replicas.</summary>
    public SwitchCosts? Switching { get; init; }
    /// <summary>Running requests with at most this many output tokens left finish on a draining replica; longer ones move their KV.</summary>
    public int DrainMaxRemainingTokens { get; init; } = 64;
    /// <summary>Workload types (for per-type metrics); SimRequest.TypeIndex indexes it.</summary>
    public IReadOnlyList<string> TypeNames { get; init; } = [];
}

/// <summary>The run cannot go on or did not conserve requests (a bug or an unserviceable plan), with the details.</summary>
public sealed class SimulationException(string message) : Exception(message);

/// <summary>A planner could not produce a plan for the scenario (no feasible deployment, solver failure).</summary>
public sealed class PlanningException(string message) : Exception(message);
