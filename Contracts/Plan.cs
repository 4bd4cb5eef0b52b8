using YamlDotNet.Serialization;

namespace OServe.Contracts;

/// <summary>
/// One replica: a model copy on <see cref="Devices"/>, split <see cref="Tp"/>-way by tensor
/// parallelism and <see cref="Pp"/>-way by pipeline stages. Devices are listed stage by stage:
/// devices[s*tp .. (s+1)*tp) form stage s, and a stage never crosses a node.
/// </summary>
public sealed record ReplicaSpec
{
    public required string Id { get; init; }
    public required string GpuType { get; init; }
    public required IReadOnlyList<string> Devices { get; init; }
    public int Tp { get; init; } = 1;
    public int Pp { get; init; } = 1;
    public int MaxNumSeqs { get; init; } = 256;
    public int MaxNumBatchedTokens { get; init; } = 8192;

    /// <summary>The configuration key of the replica: identical keys are interchangeable.</summary>
    [YamlIgnore]
    public string ConfigKey => $"{GpuType}/tp{Tp}/pp{Pp}";
}

/// <summary>How requests of one type are shared among replicas (weights need not sum to 1).</summary>
public sealed record RoutingEntry
{
    public required string Type { get; init; }
    public required IReadOnlyDictionary<string, double> Weights { get; init; }
}

public sealed record PlanWindow
{
    public double StartS { get; init; }
    public double LengthS { get; init; } = 60;
}

/// <summary>How one solver stage ended. Only <see cref="Optimal"/> and <see cref="Infeasible"/> are proofs.</summary>
public enum SolveStageStatus
{
    /// <summary>The stage proved its optimum.</summary>
    Optimal,
    /// <summary>A plan, but the stage stopped (work budget or wall-clock cap) before proving it optimal.</summary>
    Feasible,
    /// <summary>The stage stopped before finding any plan.</summary>
    NoSolution,
    /// <summary>The stage proved that no plan satisfies the constraints.</summary>
    Infeasible,
    /// <summary>The solver rejected the model (e.g. a possible 64-bit overflow).</summary>
    ModelInvalid,
    /// <summary>A heuristic ran to its own stopping rule: no optimality claim.</summary>
    Heuristic,
}

/// <summary>One stage of the planner's solve (served rate, latency, switch cost, spread), as it ended.</summary>
public sealed record SolveStage
{
    public required string Name { get; init; }
    public required SolveStageStatus Status { get; init; }
    public double? Objective { get; init; }
    public double? Bound { get; init; }
    /// <summary>Solver work used, CP-SAT deterministic seconds (the same on any machine and load).</summary>
    public double? DeterministicTime { get; init; }
    /// <summary>The stage's share of the work budget, deterministic seconds.</summary>
    public double? Budget { get; init; }
    public double? WallSeconds { get; init; }
    /// <summary>What stopped an unfinished stage: "work budget", "wall-clock cap" (machine-dependent), or the solver's message.</summary>
    public string? StoppedBy { get; init; }

    /// <summary>Ended with a proof (or, for a heuristic, by its own rule) rather than at a limit.</summary>
    [YamlIgnore]
    public bool IsFinished => Status is SolveStageStatus.Optimal or SolveStageStatus.Infeasible or SolveStageStatus.Heuristic;
}

/// <summary>What the planner expects of the plan, and how its solve went.</summary>
public sealed record PredictedFigures
{
    public double DemandRps { get; init; }
    public double ServedRps { get; init; }
    public double MaxUtilization { get; init; }
    public double? MeanLatencyS { get; init; }
    public string? SolveStatus { get; init; }
    public double? Objective { get; init; }
    public double? Bound { get; init; }
    public double? Gap { get; init; }
    public double? SolveSeconds { get; init; }
    /// <summary>Every solver stage in order; <see cref="SolveStatus"/> is "Optimal" only when each stage is.</summary>
    public IReadOnlyList<SolveStage>? Stages { get; init; }
}

public enum SwitchStepKind
{
    /// <summary>Replica unchanged: keeps serving.</summary>
    Keep,
    /// <summary>Stop admitting to the replica; its running requests finish there.</summary>
    Drain,
    /// <summary>Move a running request's KV cache from the old replica to the new one.</summary>
    MoveKv,
    /// <summary>Copy a weight shard from a device that holds it (NVLink or network).</summary>
    CopyShard,
    /// <summary>Read a weight shard from storage (cold).</summary>
    LoadShard,
    /// <summary>Release a replica's devices.</summary>
    Stop,
    /// <summary>The new replica begins serving.</summary>
    Start,
}

/// <summary>One action of a switch. <see cref="Source"/> is a device id or "storage".</summary>
public sealed record SwitchStep
{
    public required SwitchStepKind Kind { get; init; }
    public required string Replica { get; init; }
    public string? Device { get; init; }
    public string? Source { get; init; }
    public long Bytes { get; init; }
    public double EstSeconds { get; init; }
}

public sealed record SwitchPlan
{
    public required int FromVersion { get; init; }
    public required IReadOnlyList<SwitchStep> Steps { get; init; }
    public long TotalBytes { get; init; }
    /// <summary>Wall time of the switch: steps on disjoint links overlap.</summary>
    public double EstSeconds { get; init; }
}

/// <summary>The contract between planner and engine: what to deploy, how to route, how to get there.</summary>
public sealed record Plan
{
    public int Version { get; init; } = 1;
    public required string Model { get; init; }
    public required string Cluster { get; init; }
    public string Planner { get; init; } = "cpsat";
    public PlanWindow Window { get; init; } = new();
    public required IReadOnlyList<RequestTypeSpec> RequestTypes { get; init; }
    public required IReadOnlyList<ReplicaSpec> Replicas { get; init; }
    public required IReadOnlyList<RoutingEntry> Routing { get; init; }
    public PredictedFigures? Predicted { get; init; }
    public SwitchPlan? Switch { get; init; }
}

/// <summary>Plans over time: plan i holds from its window start until the next plan's.</summary>
public sealed record PlanSchedule
{
    public required string Model { get; init; }
    public required string Cluster { get; init; }
    public double WindowS { get; init; } = 60;
    public required IReadOnlyList<Plan> Plans { get; init; }
}
