using OServe.Contracts;
using OServe.Engine.Execution;
using TorchSharp;

namespace OServe.Engine.Orchestration;

/// <summary>How a switch treats requests in flight and where new replicas take their weights from.</summary>
public sealed record SwitchOptions
{
    public InFlightPolicy InFlight { get; init; } = InFlightPolicy.Migrate;
    public WeightSourcePolicy Weights { get; init; } = WeightSourcePolicy.Peer;
}

public sealed record PlanRuntimeOptions
{
    /// <summary>Engine arguments of every replica; a plan's max_num_seqs / max_num_batched_tokens can only lower them.</summary>
    public EngineSettings Engine { get; init; } = new();

    /// <summary>Name served under /v1/models; default: the model's name (which plans must name).</summary>
    public string? ServedName { get; init; }

    public SwitchOptions Switch { get; init; } = new();

    /// <summary>
    /// The torch device behind a plan's device id. Default: the host CPU for every id, i.e. the
    /// cluster's GPUs are logical devices of this machine (each replica still gets its own copy of
    /// the weights and its own KV cache).
    /// </summary>
    public Func<DeviceId, torch.Device> DeviceOf { get; init; } = _ => torch.CPU;

    /// <summary>Moves weights for a switch; a test substitutes one that fails midway.</summary>
    public IShardTransfer Transfer { get; init; } = ShardTransfer.Instance;

    public ILogger? Logger { get; init; }
}
