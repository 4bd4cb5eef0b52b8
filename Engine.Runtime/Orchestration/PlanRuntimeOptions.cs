using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Models.Parallelism;

namespace OServe.Engine.Orchestration;

/// <summary>How a switch treats requests in flight and where new replicas take their weights from.</summary>
public sealed record SwitchOptions
{
    public InFlightPolicy InFlight { get; init; } = InFlightPolicy.Migrate;
    public WeightSourcePolicy Weights { get; init; } = WeightSourcePolicy.Peer;

    /// <summary>
    /// With <see cref="InFlightPolicy.Migrate"/>: a request that has started and needs at most this
    /// many more engine steps (its prompt's remaining chunks and its remaining output tokens)
    /// finishes on the retiring replica instead of moving, as the planner's switch model drains
    /// short sequences and moves long ones (DrainMaxRemainingTokens). Moving one waits for the
    /// replica's step, copies its KV cache and re-admits it: a long prompt caught in its last
    /// chunks paid that, and the wait of the switch, on top of the few steps it had left. 0 (the
    /// default): every request moves.
    /// </summary>
    public int FinishInPlaceMaxSteps { get; init; }
}

public sealed record PlanRuntimeOptions
{
    /// <summary>Engine arguments of every replica; a plan's max_num_seqs / max_num_batched_tokens can only lower them.</summary>
    public EngineSettings Engine { get; init; } = new();

    /// <summary>Name served under /v1/models; default: the model's name (which plans must name).</summary>
    public string? ServedName { get; init; }

    public SwitchOptions Switch { get; init; } = new();

    /// <summary>
    /// A replica a switch builds first serves one prompt of this many tokens (and a decode step) of
    /// its own before any request is routed to it, as a server warms up before it takes traffic: the
    /// first long prompt on fresh shard threads grows their heaps and caches and is several times
    /// slower than the next. 0 (the default): no warm-up. Capped at the model's context; its tokens
    /// are not counted as served.
    /// </summary>
    public int WarmUpPromptTokens { get; init; }

    /// <summary>
    /// The devices behind the plan's device ids. Default (null): a logical CPU device for every GPU
    /// of the cluster, with the cluster's ids (<see cref="DevicePool.Logical(Cluster, bool)"/>), so each
    /// replica still holds only its own shards and its own KV cache.
    /// </summary>
    public DevicePool? Devices { get; init; }

    /// <summary>Moves weights for a switch; a test substitutes one that fails midway.</summary>
    public IShardTransfer Transfer { get; init; } = ShardTransfer.Instance;

    public ILogger? Logger { get; init; }

    /// <summary>Told about every replica's engine steps, each on its replica's loop thread (null: none).</summary>
    public IStepObserver? StepObserver { get; init; }
}
