namespace OServe.Contracts;

/// <summary>The built-in planner constraints a scenario or a constraints file may carry (README-constraints.md).</summary>
public enum ConstraintKind
{
    /// <summary>At most <c>count</c> replicas of (<c>tp</c>, <c>pp</c>), of <c>gpu_type</c> when given, over the cluster.</summary>
    MaxReplicas,
    /// <summary>Keep <c>gpus</c> GPUs of <c>node</c> free (all of them when <c>gpus</c> is omitted).</summary>
    KeepFree,
    /// <summary>A replica of (<c>tp</c>, <c>pp</c>) on exactly <c>devices</c> (one node), whatever else the plan does.</summary>
    Pin,
    /// <summary>No replica with tensor parallelism above <c>value</c>.</summary>
    MaxTp,
    /// <summary>No replica with pipeline parallelism above <c>value</c>.</summary>
    MaxPp,
    /// <summary>No pipeline across nodes: every replica within one node.</summary>
    NoCrossNodePp,
}

/// <summary>
/// One constraint; which fields apply depends on <see cref="Kind"/> (the reader refuses the others).
/// Node and device names are checked against a cluster by <see cref="PlanConstraints.Check"/>.
/// </summary>
public sealed record ConstraintSpec
{
    public required ConstraintKind Kind { get; init; }
    public int? Tp { get; init; }
    public int? Pp { get; init; }
    public string? GpuType { get; init; }
    public int? Count { get; init; }
    public string? Node { get; init; }
    public int? Gpus { get; init; }
    public IReadOnlyList<string>? Devices { get; init; }
    public int? Value { get; init; }
    /// <summary>Pin: the id the pinned replica gets in plans (default pin<i>, i its position in the constraints list).</summary>
    public string? Id { get; init; }

    /// <summary>A short name for messages: "max_replicas tp8/pp1 <= 2", "keep_free node0 (2 GPUs)".</summary>
    public string Describe() => Kind switch
    {
        ConstraintKind.MaxReplicas => $"max_replicas {(GpuType is null ? "" : GpuType + "/")}tp{Tp}/pp{Pp ?? 1} <= {Count}",
        ConstraintKind.KeepFree => $"keep_free {Node} ({(Gpus is { } g ? $"{g} GPUs" : "whole node")})",
        ConstraintKind.Pin => $"pin tp{Tp}/pp{Pp ?? 1} on {string.Join(",", Devices ?? [])}",
        ConstraintKind.MaxTp => $"max_tp {Value}",
        ConstraintKind.MaxPp => $"max_pp {Value}",
        _ => "no_cross_node_pp",
    };
}

/// <summary>A constraints file (<c>oserve plan --constraints FILE</c>): a <c>constraints:</c> list, as in a scenario.</summary>
public sealed record ConstraintSet
{
    public required IReadOnlyList<ConstraintSpec> Constraints { get; init; }
}
