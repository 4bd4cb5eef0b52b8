using OServe.Models.Kv;
using OServe.Models.Llama;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>A <see cref="LlamaModel"/> on one device as an <see cref="IPagedLanguageModel"/> (its cache is a single shard).</summary>
public sealed class SingleDeviceLlama(LlamaModel model, bool ownsModel = true) : IPagedLanguageModel
{
    public LlamaModel Model { get; } = model;
    public LlamaConfig Config => Model.Config;
    public ScalarType DType => Model.DType;
    public Device OutputDevice => Model.Device;
    public double LastPlanSeconds => Model.LastPlanSeconds;

    public ReplicaKvCache CreateKvCache(int numBlocks, int blockSize) =>
        new(Config, [new ReplicaKvCache.Shard(new PagedKvCache(Config, numBlocks, blockSize, Model.Device, Model.DType),
            new IndexRange(0, Config.NumLayers), new IndexRange(0, Config.NumKvHeads), Model.Device)]);

    public Tensor Forward(IReadOnlyList<SequenceChunk> batch, ReplicaKvCache cache)
    {
        if (cache.Shards.Count != 1 || cache.Shards[0].Cache.NumKvHeads != Config.NumKvHeads)
            throw new ArgumentException($"a single-device model needs a one-shard cache holding all {Config.NumKvHeads} KV heads; this one has {cache.Shards.Count} shards", nameof(cache));
        return Model.Forward(batch, cache.Shards[0].Cache);
    }

    public void Dispose()
    {
        if (ownsModel) Model.Dispose();
    }
}
