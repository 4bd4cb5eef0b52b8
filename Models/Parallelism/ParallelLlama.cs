using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

public sealed record ParallelLlamaOptions
{
    /// <summary>
    /// Run the ranks of a stage on worker threads. Default (null): on when the ranks sit on
    /// distinct CUDA devices; off for logical CPU devices that share the host's cores with
    /// libtorch's own intra-op threads, where extra threads only oversubscribe them. Logical
    /// devices that own a core (<see cref="PoolDevice.OwnsCore"/>) always run their ranks on their
    /// own threads, one intra-op thread each, whatever this says.
    /// </summary>
    public bool? ConcurrentShards { get; init; }

    /// <summary>Take slices from devices that already hold them (same device, then same node, then others) before reading <c>source</c>.</summary>
    public bool CopyFromPeers { get; init; } = true;
}

/// <summary>
/// A Llama replica split over tp x pp pool devices (stage-major: devices[s*tp .. (s+1)*tp) form
/// stage s); see <see cref="ParallelLayout"/> for what each device holds. Per layer each rank
/// computes its heads' attention and its MLP columns, and the stage sums the ranks' partial
/// outputs (the all-reduce) before the residual add; between stages the activations move to the
/// next stage's devices. The result equals the single-device model up to float rounding.
/// A part of a replica holds only a run of its stages (<see cref="Stages"/>), as a worker does when
/// the replica's stages are on several nodes: <see cref="ForwardPart"/> then starts from the previous
/// part's activations and hands its own on, unless it holds the first or the last stage.
/// </summary>
public sealed class ParallelLlama : IPagedLanguageModel
{
    private readonly LlamaShard[] shards;
    private readonly LlamaConfig stepConfig;
    private readonly bool concurrent;
    private readonly bool ownsCores;
    /// <summary>Per shard, its dedicated thread when the devices own cores (null for rank 0 of each stage, which runs on the caller's thread).</summary>
    private readonly ShardWorker?[] workers;
    /// <summary>Layout index of shards[0] (Stages.Start x tp).</summary>
    private readonly int firstShard;

    private ParallelLlama(ParallelLayout layout, IndexRange stages, IReadOnlyList<PoolDevice> devices, ScalarType dtype, LlamaShard[] shards, TransferReport report, bool concurrent)
    {
        Layout = layout;
        Stages = stages;
        firstShard = stages.Start * layout.Tp;
        Devices = devices.ToArray();
        DType = dtype;
        this.shards = shards;
        this.concurrent = concurrent;
        BuildReport = report;
        // One core per device: the caller's thread (the engine loop) is the core of rank 0 of each
        // stage; every other rank gets a thread of its own. Pipeline stages run one after another
        // within a step, so rank 0 of every stage can share the caller's thread.
        ownsCores = devices.All(d => d.OwnsCore);
        workers = shards.Select(s => ownsCores && s.Spec.Rank > 0 ? new ShardWorker() : null).ToArray();
        // StepPlan sees one shard's cache: its layers and its KV heads (every shard has as many).
        stepConfig = Config with { NumLayers = shards[0].Spec.Layers.Count, NumKvHeads = layout.LocalKvHeads };
        foreach (var shard in shards)
            foreach (var (slice, tensor) in shard.Slices) shard.Device.Hold(slice, tensor, this);
    }

    /// <summary>
    /// Builds a replica on <paramref name="devices"/> (tp x pp of them, stage-major). Each slice is
    /// copied from a device of the pool that already holds it when <see cref="ParallelLlamaOptions.CopyFromPeers"/>,
    /// else read from <paramref name="source"/>; <see cref="BuildReport"/> says which and how long it took.
    /// </summary>
    /// <param name="stages">the run of stages to build (a part of the replica, whose other stages run elsewhere); null: all of them.</param>
    public static ParallelLlama Create(
        LlamaConfig config, IReadOnlyList<PoolDevice> devices, int tp, int pp, IWeightSource source, ScalarType dtype, ParallelLlamaOptions? options = null,
        IndexRange? stages = null)
    {
        options ??= new ParallelLlamaOptions();
        config.Validate(source.Origin);
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"model dtype must be Float32, BFloat16 or Float16, got {dtype}", nameof(dtype));
        var layout = ParallelLayout.Create(config, tp, pp);
        var run = stages ?? new IndexRange(0, pp);
        if (run.Start < 0 || run.Count < 1 || run.End > pp)
            throw new ArgumentException($"stages {run}: a tp={tp} x pp={pp} replica has stages 0..{pp}", nameof(stages));
        if (devices.Count != run.Count * tp)
            throw new ArgumentException(run.Count == pp
                ? $"tp={tp} x pp={pp} needs {layout.NumShards} devices, got {devices.Count}"
                : $"stages {run} of tp={tp} x pp={pp} need {run.Count * tp} devices, got {devices.Count}", nameof(devices));
        if (devices.Distinct().Count() != devices.Count)
            throw new ArgumentException($"a replica's devices must be distinct: {string.Join(", ", devices.Select(d => d.Id))}", nameof(devices));

        if (devices.Any(d => d.IsLogical)) NativeMemoryTuning.Apply();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (shards, report) = ShardTransfer.Load(layout, devices, dtype, source, options.CopyFromPeers, run.Start * tp);
        bool distinctCuda = devices.All(d => !d.IsLogical) && devices.Select(d => d.Torch.index).Distinct().Count() == devices.Count;
        return new ParallelLlama(layout, run, devices, dtype, shards, report, options.ConcurrentShards ?? (distinctCuda && tp > 1));
    }

    /// <summary>Shards an existing single-device model's weights over <paramref name="devices"/>.</summary>
    public static ParallelLlama FromModel(LlamaModel model, IReadOnlyList<PoolDevice> devices, int tp, int pp, ParallelLlamaOptions? options = null) =>
        Create(model.Config, devices, tp, pp, new ModelWeightSource(model), model.DType, options);

    public ParallelLayout Layout { get; }

    /// <summary>The stages this object holds: all of the layout's, or a run of them (a part of a replica whose other stages run elsewhere).</summary>
    public IndexRange Stages { get; }

    public bool IsWhole => Stages.Count == Layout.Pp;
    public LlamaConfig Config => Layout.Config;
    public ScalarType DType { get; }
    public IReadOnlyList<PoolDevice> Devices { get; }
    public Device OutputDevice => Devices[Devices.Count - Layout.Tp].Torch;

    /// <summary>Where this replica's weights came from (peers or storage), bytes and wall time.</summary>
    public TransferReport BuildReport { get; }

    /// <summary>The weight slices device <paramref name="shardIndex"/> holds, by canonical name and range (fused weights as views).</summary>
    public IReadOnlyDictionary<WeightSlice, Tensor> ExportShard(int shardIndex) => shards[shardIndex].Slices;

    /// <summary>Bytes of weights on each device, in device order.</summary>
    public IReadOnlyList<long> ShardBytes => shards.Select(s => s.Bytes).ToArray();

    public ReplicaKvCache CreateKvCache(int numBlocks, int blockSize) =>
        new(Config, shards.Select(s => new ReplicaKvCache.Shard(
            new PagedKvCache(Config with { NumLayers = s.Spec.Layers.Count, NumKvHeads = s.Spec.KvHeads.Count }, numBlocks, blockSize, s.Device.Torch, DType),
            s.Spec.Layers, s.Spec.KvHeads, s.Device.Torch)));

    public Tensor Forward(IReadOnlyList<SequenceChunk> batch, ReplicaKvCache cache)
    {
        if (!IsWhole)
            throw new InvalidOperationException($"this part holds stages {Stages} of {Layout}: run it with ForwardPart");
        return ForwardPart(batch, cache, hidden: null);
    }

    /// <summary>
    /// One step of the stages held: from the batch's token embeddings when they include stage 0,
    /// else from <paramref name="hidden"/>, the previous part's output ([tokens, dim], any device).
    /// Returns the float32 logits (as <see cref="Forward"/>) when they include the last stage, else
    /// the activations to hand to the next part ([tokens, dim] in the model dtype). The KV of the
    /// held layers goes into <paramref name="cache"/> (<see cref="CreateKvCache"/> of this part).
    /// </summary>
    public Tensor ForwardPart(IReadOnlyList<SequenceChunk> batch, ReplicaKvCache cache, Tensor? hidden)
    {
        if ((Stages.Start == 0) != (hidden is null))
            throw new ArgumentException(Stages.Start == 0
                ? "this part holds the first stage: it embeds the tokens, give it no activations"
                : $"this part starts at stage {Stages.Start}: give it the previous stage's activations", nameof(hidden));
        CheckCache(cache);
        // The calling thread computes rank 0 and everything between the ranks (all-reduce sums,
        // residual adds), and the engine samples on it next: one core's worth of threads.
        if (ownsCores) IntraOpThreads.PinCurrentThread(1);
        var plan = StepPlan.Build(batch, cache.Shards[0].Cache, stepConfig);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var inputs = StepInputsPerShard(plan);

        int tp = Layout.Tp;
        Tensor[] xs;
        if (hidden is null)
        {
            xs = RunStage(0, scope, s => s.EmbedPartial(inputs[Local(s)].Tensors.Tokens));
            xs = Collectives.AllReduceSum(xs, StageDevices(0));
        }
        else
        {
            var (tokens, dim) = (batch.Sum(c => c.TokenIds.Count), Config.Dim);
            if (hidden.dim() != 2 || hidden.shape[0] != tokens || hidden.shape[1] != dim)
                throw new ArgumentException($"activations [{string.Join(", ", hidden.shape)}] do not fit this step ({tokens} tokens of dim {dim})", nameof(hidden));
            var input = hidden.to(DType);
            xs = StageDevices(Stages.Start).Select(d => Collectives.SameDevice(input.device, d) ? input : input.to(d)).ToArray();
        }
        for (int stage = Stages.Start; stage < Stages.End; stage++)
        {
            if (stage > Stages.Start)
            {
                // Pipeline hand-off: the previous stage's activations go to each device of this one.
                var handed = xs[0];
                xs = StageDevices(stage).Select(d => Collectives.SameDevice(handed.device, d) ? handed : handed.to(d)).ToArray();
            }
            var layers = Layout.Shard(stage, 0).Layers;
            for (int l = layers.Start; l < layers.End; l++)
            {
                // Per-layer scope: a long prefill must not keep every layer's activations alive.
                using var layerScope = NewDisposeScope();
                var current = xs;
                var attention = RunStage(stage, layerScope, s =>
                    s.AttentionPartial(l, current[s.Spec.Rank], inputs[Local(s)], cache.Shards[Local(s)].Cache));
                var attentionSum = Collectives.AllReduceSum(attention, StageDevices(stage));
                var hs = Enumerable.Range(0, tp).Select(r => current[r].Plus(attentionSum[r])).ToArray();
                var mlp = RunStage(stage, layerScope, s => s.MlpPartial(l, hs[s.Spec.Rank]));
                var mlpSum = Collectives.AllReduceSum(mlp, StageDevices(stage));
                xs = Enumerable.Range(0, tp).Select(r => hs[r].Plus_(mlpSum[r]).MoveToOuterDisposeScope()).ToArray();
            }
        }
        if (Stages.End < Layout.Pp)
            return xs[0].MoveToOuterDisposeScope(); // every rank of the stage holds the same sum
        int last = Layout.Pp - 1;
        var final = xs;
        var parts = RunStage(last, scope, s => s.HeadPartial(final[s.Spec.Rank].index_select(0, inputs[Local(s)].Tensors.OutputRows)));
        var logits = Collectives.Gather(parts, 1, OutputDevice).to(ScalarType.Float32);
        return logits.MoveToOuterDisposeScope();
    }

    private void CheckCache(ReplicaKvCache cache)
    {
        if (cache.Shards.Count != shards.Length)
            throw new ArgumentException($"the KV cache has {cache.Shards.Count} shards, this {Layout} replica has {shards.Length} devices", nameof(cache));
        for (int i = 0; i < shards.Length; i++)
        {
            var c = cache.Shards[i];
            var s = shards[i].Spec;
            if (c.Layers != s.Layers || c.KvHeads != s.KvHeads || !Collectives.SameDevice(c.Device, shards[i].Device.Torch))
                throw new ArgumentException(
                    $"KV cache shard {i} holds layers {c.Layers}, kv heads {c.KvHeads} on {c.Device}; this replica's device {i} needs layers {s.Layers}, kv heads {s.KvHeads} on {shards[i].Device.Torch}",
                    nameof(cache));
        }
    }

    /// <summary>Index tensors and rotary rows per shard; built once per distinct torch device.</summary>
    private StepInputs[] StepInputsPerShard(StepPlan plan)
    {
        var byDevice = new Dictionary<(DeviceType, int), StepInputs>();
        return shards.Select(s =>
        {
            var key = (s.Device.Torch.type, (int)s.Device.Torch.index);
            if (!byDevice.TryGetValue(key, out var inputs))
            {
                var t = plan.ToTensors(s.Device.Torch);
                var (cos, sin) = s.Rotary(t.Positions);
                byDevice[key] = inputs = new StepInputs(plan, t, cos, sin);
            }
            return inputs;
        }).ToArray();
    }

    private Device[] StageDevices(int stage) => Enumerable.Range(0, Layout.Tp).Select(r => shards[stage * Layout.Tp - firstShard + r].Device.Torch).ToArray();

    /// <summary>Where shard <paramref name="s"/> sits in this object's arrays (its step inputs, its cache shard).</summary>
    private int Local(LlamaShard s) => s.Spec.Index - firstShard;

    /// <summary>Runs <paramref name="work"/> on each rank of a stage; results are owned by <paramref name="owner"/>.</summary>
    private Tensor[] RunStage(int stage, DisposeScope owner, Func<LlamaShard, Tensor> work)
    {
        var ranks = shards.AsSpan(stage * Layout.Tp - firstShard, Layout.Tp).ToArray();
        if (ranks.Length == 1) return [work(ranks[0])];
        if (ownsCores) return RunOnOwnCores(stage * Layout.Tp - firstShard, ranks, owner, work);
        if (!concurrent) return ranks.Select(work).ToArray();
        var results = new Tensor[ranks.Length];
        // Grad mode and dispose scopes are per thread: each worker sets its own and hands its result back detached.
        Parallel.For(0, ranks.Length, r =>
        {
            using var noGrad = no_grad();
            using var workerScope = NewDisposeScope();
            results[r] = work(ranks[r]).DetachFromDisposeScope();
        });
        foreach (var t in results) owner.Attach(t);
        return results;
    }

    /// <summary>Ranks 1.. on their dedicated threads while rank 0 runs here; waits for all before returning (errors rethrown after every rank stopped).</summary>
    private Tensor[] RunOnOwnCores(int first, LlamaShard[] ranks, DisposeScope owner, Func<LlamaShard, Tensor> work)
    {
        for (int r = 1; r < ranks.Length; r++)
        {
            var shard = ranks[r];
            workers[first + r]!.Post(() => work(shard));
        }
        var results = new Tensor[ranks.Length];
        Exception? error = null;
        try
        {
            results[0] = work(ranks[0]);
        }
        catch (Exception e)
        {
            error = e;
        }
        for (int r = 1; r < ranks.Length; r++)
        {
            try
            {
                results[r] = workers[first + r]!.Wait();
                owner.Attach(results[r]);
            }
            catch (Exception e)
            {
                error ??= e;
            }
        }
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        return results;
    }

    public void Dispose()
    {
        foreach (var w in workers) w?.Dispose();
        foreach (var d in Devices) d.Release(this);
        foreach (var s in shards) s.Dispose();
    }

    public override string ToString() => IsWhole
        ? $"Llama {Layout} on {string.Join(", ", Devices.Select(d => d.Id))}"
        : $"stages {Stages} of Llama {Layout} on {string.Join(", ", Devices.Select(d => d.Id))}";
}
