using System.Diagnostics;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Models;
using OServe.Models.Llama;
using TorchSharp;

namespace OServe.Engine.Orchestration;

/// <summary>
/// Builds a plan's replica: its weights on its device (from a peer or from storage, through
/// <see cref="IShardTransfer"/>), its paged KV cache, its engine. Only tp=1, pp=1 replicas here:
/// sharded replicas come with the parallel model (Models/Parallel), not merged yet.
/// </summary>
internal sealed class ReplicaBuilder(LoadedModel model, IWeightStore storage, PlanRuntimeOptions options, IClock clock)
{
    private readonly IEngineTokenizer _tokenizer = new ModelTokenizer(model.Tokenizer);

    public LlamaConfig Config => model.Config;
    public torch.ScalarType DType => model.Model.DType;
    public long WeightBytes => Config.ParameterCount * (DType == torch.ScalarType.Float32 ? 4 : 2);
    public IEngineTokenizer Tokenizer => _tokenizer;

    public static IEnumerable<(string Field, string Message)> Unsupported(Plan plan) => ReplicaBuilderRules.Unsupported(plan);
    public torch.Device DeviceOf(ReplicaSpec spec) => options.DeviceOf(DeviceId.Parse(spec.Devices[0]));

    /// <summary>
    /// A replica of <paramref name="spec"/> whose weights are copied from <paramref name="peer"/>
    /// (null: read from storage). Returns the event describing the transfer.
    /// </summary>
    public (LiveReplica Replica, SwitchEvent Transfer) Build(ReplicaSpec spec, LiveReplica? peer, IShardTransfer transfer)
    {
        var device = DeviceOf(spec);
        var watch = Stopwatch.StartNew();
        var weights = peer is not null
            ? transfer.FromPeer(peer.Model, device)
            : transfer.FromStorage(storage, Config, device, DType);
        double seconds = watch.Elapsed.TotalSeconds;
        try
        {
            var replica = Start(spec, weights);
            var ev = peer is not null
                ? new SwitchEvent(SwitchStepKind.CopyShard, spec.Id, $"weights {peer.Spec.Devices[0]} -> {spec.Devices[0]} (peer replica {peer.Id})", WeightBytes, seconds)
                : new SwitchEvent(SwitchStepKind.LoadShard, spec.Id, $"weights {storage.Origin} -> {spec.Devices[0]}", WeightBytes, seconds);
            return (replica, ev);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>The first replicas copy the loaded model (host memory), as a server start loads weights once.</summary>
    public LiveReplica BuildFromHost(ReplicaSpec spec) => Start(spec, ShardTransfer.Instance.FromPeer(model.Model, DeviceOf(spec)));

    private LiveReplica Start(ReplicaSpec spec, LlamaModel weights)
    {
        var settings = options.Engine with
        {
            MaxNumSeqs = Math.Min(spec.MaxNumSeqs, options.Engine.MaxNumSeqs),
            MaxNumBatchedTokens = Math.Min(spec.MaxNumBatchedTokens, options.Engine.MaxNumBatchedTokens),
        };
        var config = LocalEngineBuilder.SchedulerConfigFor(Config, DType, settings);
        var runner = TorchModelRunner.Create(weights, config);
        var engineOptions = new AsyncEngineOptions
        {
            ModelName = options.ServedName ?? model.Name,
            AdmissionCapacity = settings.AdmissionCapacity,
            RetryAfter = settings.RetryAfter,
        };
        return new LiveReplica(spec, weights, new AsyncEngine(engineOptions, config, runner, _tokenizer, clock), runner);
    }
}

/// <summary>What the plan runtime can build today, as plan problems (field paths as PlanChecks uses).</summary>
public static class ReplicaBuilderRules
{
    public static IEnumerable<(string Field, string Message)> Unsupported(Plan plan)
    {
        for (int i = 0; i < plan.Replicas.Count; i++)
        {
            var r = plan.Replicas[i];
            if (r.Tp != 1 || r.Pp != 1)
                yield return ($"replicas[{i}].{(r.Tp != 1 ? "tp" : "pp")}",
                    $"tp {r.Tp} x pp {r.Pp}: this runtime builds tp=1, pp=1 replicas only (sharded replicas need the parallel model, not merged yet)");
        }
    }
}
