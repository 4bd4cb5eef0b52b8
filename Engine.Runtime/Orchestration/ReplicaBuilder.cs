using System.Diagnostics;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Models;
using OServe.Models.Llama;
using OServe.Models.Parallelism;
using TorchSharp;

namespace OServe.Engine.Orchestration;

/// <summary>
/// Builds a plan's replica: its weights sharded tp x pp over the pool devices the plan names
/// (each slice copied from a device that holds it, or read from storage, through
/// <see cref="IShardTransfer"/>), its paged KV cache laid out to match, its engine.
/// </summary>
internal sealed class ReplicaBuilder(LoadedModel model, IWeightStore storage, DevicePool pool, PlanRuntimeOptions options, IClock clock)
{
    private readonly IEngineTokenizer _tokenizer = new ModelTokenizer(model.Tokenizer);

    public LlamaConfig Config => model.Config;
    public torch.ScalarType DType => model.Model.DType;
    public long WeightBytes => Config.ParameterCount * (DType == torch.ScalarType.Float32 ? 4 : 2);
    public IEngineTokenizer Tokenizer => _tokenizer;
    public DevicePool Pool => pool;

    public IEnumerable<(string Field, string Message)> Unsupported(Plan plan) => ReplicaBuilderRules.Unsupported(plan, Config, pool);

    /// <summary>
    /// A replica of <paramref name="spec"/>; with <paramref name="copyFromPeers"/> its shards come from
    /// devices that hold them (the running replicas'), the rest from storage. Returns the events
    /// describing the transfer (one per origin that contributed bytes).
    /// </summary>
    public (LiveReplica Replica, IReadOnlyList<SwitchEvent> Transfers, TransferReport Report) Build(ReplicaSpec spec, bool copyFromPeers, IShardTransfer transfer)
    {
        var devices = pool.Resolve(spec);
        var watch = Stopwatch.StartNew();
        var weights = transfer.Build(Config, devices, spec.Tp, spec.Pp, storage, DType, copyFromPeers);
        double seconds = watch.Elapsed.TotalSeconds;
        try
        {
            var replica = Start(spec, weights);
            var r = weights.BuildReport;
            string to = string.Join(",", spec.Devices);
            var events = new List<SwitchEvent>();
            long fromDevices = r.BytesFromPeers + r.BytesFromSameDevice;
            if (fromDevices > 0)
                events.Add(new SwitchEvent(SwitchStepKind.CopyShard, spec.Id,
                    $"tp{spec.Tp} x pp{spec.Pp} shards -> {to} from devices holding them ({r.BytesFromPeers} B peer-to-peer, {r.BytesFromSameDevice} B on the same device)",
                    fromDevices, seconds * fromDevices / Math.Max(1, r.TotalBytes)));
            if (r.BytesFromStorage > 0)
                events.Add(new SwitchEvent(SwitchStepKind.LoadShard, spec.Id, $"tp{spec.Tp} x pp{spec.Pp} shards {storage.Origin} -> {to}",
                    r.BytesFromStorage, seconds * r.BytesFromStorage / Math.Max(1, r.TotalBytes)));
            return (replica, events, r);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs one prompt of <paramref name="promptTokens"/> tokens (capped at the context, fixed ids)
    /// and one decode step on <paramref name="replica"/> before it is routed to, and records its
    /// tokens so they are not counted as served. Returns the seconds it took.
    /// </summary>
    public async Task<double> WarmUpAsync(LiveReplica replica, int promptTokens, CancellationToken cancellationToken)
    {
        int tokens = Math.Min(promptTokens, Config.MaxSeqLen - 2);
        if (tokens < 1) return 0;
        var before = replica.Engine.Snapshot();
        var prompt = Enumerable.Range(0, tokens).Select(i => 1 + i % Math.Max(1, Config.VocabSize - 1)).ToArray();
        var request = new GenerationRequest($"warm-up-{replica.Id}-{Guid.NewGuid():N}", prompt,
            new SamplingParams { MaxTokens = 2, Temperature = 0, IgnoreEos = true });
        var watch = Stopwatch.StartNew();
        await foreach (var _ in replica.Engine.GenerateAsync(request, cancellationToken).ConfigureAwait(false)) { }
        var after = replica.Engine.Snapshot();
        replica.WarmUpTokens = (after.PromptTokensTotal - before.PromptTokensTotal, after.GenerationTokensTotal - before.GenerationTokensTotal);
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>The first replicas shard the loaded model (host memory), as a server start loads weights once.</summary>
    public LiveReplica BuildFromHost(ReplicaSpec spec)
    {
        var weights = ParallelLlama.FromModel(model.Model, pool.Resolve(spec), spec.Tp, spec.Pp);
        try
        {
            return Start(spec, weights);
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    /// <summary>The engine of a replica over <paramref name="weights"/> built elsewhere (a replica whose later stages run on other workers).</summary>
    internal LiveReplica Start(ReplicaSpec spec, IPagedLanguageModel weights)
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
            StepObserver = options.StepObserver,
        };
        return new LiveReplica(spec, weights, new AsyncEngine(engineOptions, config, runner, _tokenizer, clock), runner);
    }
}

/// <summary>What the plan runtime can build, as plan problems (field paths as PlanChecks uses).</summary>
public static class ReplicaBuilderRules
{
    /// <summary>
    /// Replicas whose tp x pp split the model does not allow (tp must divide the attention heads
    /// and suit the KV heads, pp at most the layers), or whose devices the pool lacks.
    /// </summary>
    public static IEnumerable<(string Field, string Message)> Unsupported(Plan plan, LlamaConfig config, DevicePool? pool = null)
    {
        for (int i = 0; i < plan.Replicas.Count; i++)
        {
            var r = plan.Replicas[i];
            (string Field, string Message)? problem = null;
            try
            {
                ParallelLayout.Create(config, r.Tp, r.Pp);
            }
            catch (ArgumentException e)
            {
                problem = ($"replicas[{i}].{(e.ParamName == "pp" ? "pp" : "tp")}", $"tp {r.Tp} x pp {r.Pp} cannot split this model: {e.Message.Split(" (Parameter", 2)[0]}");
            }
            if (problem is { } p)
            {
                yield return p;
                continue;
            }
            if (pool is null) continue;
            for (int d = 0; d < r.Devices.Count; d++)
                if (!pool.Contains(r.Devices[d]))
                    yield return ($"replicas[{i}].devices[{d}]", $"device '{r.Devices[d]}' is not in this runtime's device pool ({pool})");
        }
    }
}
