using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Models;
using OServe.Models.Parallelism;

namespace OServe.Engine.Demo;

/// <summary>
/// How the demo runs its engines: the built-in model, two logical devices of one core each
/// (<see cref="PoolDevice.OwnsCore"/>), engine limits sized for a 2-core CPU.
/// </summary>
public sealed record DemoRunSettings
{
    /// <summary>
    /// Prefills are chunked at 512 tokens: a live switch that moves a request waits for its replica's
    /// step to end, and an unchunked 2048-token prefill on one core held a switch 0.5-1 s (the moved
    /// long prompts' E2E then reached 1.7 s); chunked, switches took 0.02-0.51 s. One core also ran
    /// a 2048-token prompt faster in 512-token chunks (400-410 vs 580 ms).
    /// </summary>
    public EngineSettings Engine { get; init; } = new() { MaxNumSeqs = 16, MaxNumBatchedTokens = 512, MaxModelLen = 2400, KvCacheGib = 0.25 };
    public BuiltInModelOptions Model { get; init; } = new() { MaxSeqLen = 2400, VocabSize = 512 };
    public double MemoryGibPerDevice { get; init; } = 1.0;
    /// <summary>What a live switch does with requests in flight (`demo --in-flight`).</summary>
    public InFlightPolicy InFlight { get; init; } = InFlightPolicy.Migrate;
    /// <summary>
    /// Under <see cref="InFlightPolicy.Migrate"/>, a started request with at most this many engine
    /// steps left finishes where it is (<see cref="SwitchOptions.FinishInPlaceMaxSteps"/>): a move
    /// cost 0.03-0.22 s here (the replica's step, the KV copy, the re-admission), 6 to 40 decode steps.
    /// A long prompt (4 chunks of 512 tokens and 4 output tokens) caught by the switch back to
    /// 1 x tp2 then finishes on its tp1 replica; chats (32 output tokens) still move unless nearly done.
    /// </summary>
    public int FinishInPlaceMaxSteps { get; init; } = 8;
    /// <summary>Where the model runs (`demo --device`); null or a CPU: one-core logical devices. On a GPU the plan's devices are slots sharing it.</summary>
    public TorchSharp.torch.Device? Device { get; init; }

    /// <summary>A plan runtime on a fresh pool of one-core logical devices (or slots of the GPU); cold loads regenerate the built-in weights.</summary>
    public PlanRuntime Start(LoadedModel model, Cluster cluster, Plan plan) =>
        PlanRuntime.Start(plan, cluster, model, new RandomWeightStore(model.Config, Model.Seed), new PlanRuntimeOptions
        {
            Engine = Engine, Devices = Device is { type: TorchSharp.DeviceType.CUDA } gpu
                ? DevicePool.Shared(cluster.NumGpus, gpu, cluster.Nodes[0].Name)
                : DevicePool.Logical(cluster, oneCoreEach: true),
            Logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance,
            Switch = new SwitchOptions { InFlight = InFlight, FinishInPlaceMaxSteps = FinishInPlaceMaxSteps },
        });
}
