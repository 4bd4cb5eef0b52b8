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
