using OServe.Engine.Scheduling;
using OServe.Models.Kv;
using OServe.Models.Llama;
using static TorchSharp.torch;

namespace OServe.Engine.Execution;

/// <summary>
/// The real executor: turns a <see cref="SchedulerOutput"/> into one batched
/// <see cref="LlamaModel.Forward"/> over the paged KV cache, then samples each chunk that reached
/// the end of its tokens. All-greedy batches take the argmax on the device; otherwise the logits
/// come to the host once and <see cref="Sampler"/> draws per row with each request's own stream.
/// Runs on the engine loop thread only.
/// </summary>
public sealed class TorchModelRunner : IModelRunner, IKvMigration, IDisposable
{
    private readonly LlamaModel _model;
    private readonly Sampler _sampler = new();
    private readonly Dictionary<string, SamplingRng> _rngs = new(StringComparer.Ordinal);
    private readonly List<SequenceChunk> _batch = [];
    private readonly bool _ownsCache;

    public TorchModelRunner(LlamaModel model, PagedKvCache cache, bool ownsCache = false)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        Cache = cache ?? throw new ArgumentNullException(nameof(cache));
        _ownsCache = ownsCache;
    }

    /// <summary>A runner with its own cache of <see cref="SchedulerConfig.NumKvBlocks"/> blocks on the model's device and dtype.</summary>
    public static TorchModelRunner Create(LlamaModel model, SchedulerConfig config) =>
        new(model, new PagedKvCache(model.Config, config.NumKvBlocks, config.BlockSize, model.Device, model.DType), ownsCache: true);

    public PagedKvCache Cache { get; }

    public void Execute(SchedulerOutput output, Span<int> sampledTokens)
    {
        foreach (var id in output.FinishedRequestIds)
            _rngs.Remove(id);
        if (output.IsEmpty)
            return;

        var chunks = output.Chunks;
        _batch.Clear();
        bool allGreedy = true;
        foreach (var chunk in chunks)
        {
            var tokens = new int[chunk.NumTokens];
            chunk.Sequence.CopyTokens(chunk.StartPosition, tokens);
            _batch.Add(new SequenceChunk(tokens, chunk.StartPosition, chunk.Sequence.BlockTable));
            if (chunk.SamplesToken && !IsArgMax(chunk.Sequence.Sampling))
                allGreedy = false;
        }

        using var scope = NewDisposeScope();
        var logits = _model.Forward(_batch, Cache); // [chunks, vocab] float32
        if (allGreedy)
        {
            var best = logits.argmax(-1).cpu().data<long>().ToArray();
            for (int k = 0; k < chunks.Length; k++)
                sampledTokens[k] = chunks[k].SamplesToken ? (int)best[k] : IModelRunner.NoToken;
            return;
        }

        var host = logits.cpu().data<float>().ToArray();
        int vocab = (int)logits.shape[1];
        for (int k = 0; k < chunks.Length; k++)
        {
            if (!chunks[k].SamplesToken)
            {
                sampledTokens[k] = IModelRunner.NoToken;
                continue;
            }
            var seq = chunks[k].Sequence;
            sampledTokens[k] = _sampler.Sample(host.AsSpan(k * vocab, vocab), seq.Sampling, RngOf(seq));
        }
    }

    public KvBlocks Export(Sequence seq)
    {
        int numBlocks = (seq.NumComputedTokens + Cache.BlockSize - 1) / Cache.BlockSize;
        if (numBlocks > seq.NumBlocks)
            throw new InvalidOperationException($"'{seq.RequestId}' has {seq.NumComputedTokens} computed tokens but only {seq.NumBlocks} blocks");
        using var scope = NewDisposeScope();
        var ids = tensor(seq.BlockTable.Take(numBlocks).Select(b => (long)b).ToArray(), ScalarType.Int64, Cache.Device);
        var keys = new Tensor[Cache.NumLayers];
        var values = new Tensor[Cache.NumLayers];
        for (int l = 0; l < Cache.NumLayers; l++)
        {
            // index_select copies: the blocks may be reused as soon as the scheduler frees them.
            keys[l] = Cache.Keys(l).index_select(0, ids).DetachFromDisposeScope();
            values[l] = Cache.Values(l).index_select(0, ids).DetachFromDisposeScope();
        }
        return new KvBlocks(keys, values, seq.NumComputedTokens);
    }

    public void Import(Sequence seq, KvBlocks kv)
    {
        int numBlocks = (kv.NumTokens + Cache.BlockSize - 1) / Cache.BlockSize;
        if (kv.NumTokens != seq.NumComputedTokens || numBlocks > seq.NumBlocks || kv.Keys.Count != Cache.NumLayers)
            throw new ArgumentException(
                $"KV of {kv.NumTokens} tokens over {kv.Keys.Count} layers does not fit '{seq.RequestId}' ({seq.NumComputedTokens} computed, {seq.NumBlocks} blocks, {Cache.NumLayers} layers)");
        if (kv.Keys.Count > 0 && kv.Keys[0].shape[1] != Cache.BlockSize)
            throw new ArgumentException($"KV blocks of {kv.Keys[0].shape[1]} tokens cannot land in a cache of {Cache.BlockSize}-token blocks");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var ids = tensor(seq.BlockTable.Take(numBlocks).Select(b => (long)b).ToArray(), ScalarType.Int64, Cache.Device);
        for (int l = 0; l < Cache.NumLayers; l++)
        {
            Cache.Keys(l).index_copy_(0, ids, kv.Keys[l].to(Cache.DType, Cache.Device));
            Cache.Values(l).index_copy_(0, ids, kv.Values[l].to(Cache.DType, Cache.Device));
        }
    }

    public void Dispose()
    {
        if (_ownsCache)
            Cache.Dispose();
    }

    private static bool IsArgMax(SamplingParams sampling) => sampling.IsGreedy || sampling.TopK == 1;

    private SamplingRng RngOf(Sequence seq)
    {
        if (!_rngs.TryGetValue(seq.RequestId, out var rng))
            _rngs[seq.RequestId] = rng = seq.Sampling.Seed is { } seed ? new SamplingRng(seed) : SamplingRng.FromEntropy();
        return rng;
    }
}
