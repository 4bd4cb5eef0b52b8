using OServe.Contracts;

namespace OServe.Engine.Orchestration;

public enum SwitchOutcome
{
    /// <summary>The new plan is in force.</summary>
    Applied,
    /// <summary>Building the new replicas failed; the old plan kept serving throughout and is still in force.</summary>
    RolledBack,
}

/// <summary>What a request in flight on a retired replica does.</summary>
public enum InFlightPolicy
{
    /// <summary>Move to a replica of the new plan with its KV cache (continues at once).</summary>
    Migrate,
    /// <summary>Finish on the old replica, which takes no new requests and stops when empty.</summary>
    Drain,
}

/// <summary>Where a new replica's weights came from.</summary>
public enum WeightSourcePolicy
{
    /// <summary>Copy from a live replica's device that holds them (hot); storage only when none does.</summary>
    Peer,
    /// <summary>Always read from storage (a cold reload; the baseline the benchmark compares with).</summary>
    Storage,
}

/// <summary>One action a switch took, with its wall time (seconds) and bytes moved.</summary>
public sealed record SwitchEvent(SwitchStepKind Kind, string Replica, string Detail, long Bytes, double Seconds);

/// <summary>The result of <see cref="PlanRuntime.ApplyAsync"/>.</summary>
public sealed record SwitchReport
{
    public required SwitchOutcome Outcome { get; init; }
    public required int FromVersion { get; init; }
    /// <summary>The version in force after the call (the old one after a rollback).</summary>
    public required int ToVersion { get; init; }
    public int NumKept { get; init; }
    public int NumStarted { get; init; }
    public int NumStopped { get; init; }
    public long BytesFromPeers { get; init; }
    public long BytesFromStorage { get; init; }
    public long KvBytesMoved { get; init; }
    public int NumRequestsMigrated { get; init; }
    /// <summary>Requests left to finish on retired replicas (drain).</summary>
    public int NumRequestsDrained { get; init; }
    /// <summary>Building new replicas (weights + caches), while the old plan serves.</summary>
    public double BuildSeconds { get; init; }
    /// <summary>From the routing change until every retired replica has handed over or drained and stopped.</summary>
    public double RetireSeconds { get; init; }
    public double TotalSeconds { get; init; }
    public IReadOnlyList<SwitchEvent> Events { get; init; } = [];
    /// <summary>Why a rolled-back switch failed.</summary>
    public string? Error { get; init; }
}

/// <summary>A plan the runtime refuses before touching anything: every problem, file:line style.</summary>
public sealed class PlanRejectedException(IReadOnlyList<ContractError> errors)
    : Exception("plan rejected: " + string.Join("; ", errors))
{
    public IReadOnlyList<ContractError> Errors { get; } = errors;
}
