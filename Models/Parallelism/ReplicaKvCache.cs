using OServe.Models.Kv;
using OServe.Models.Llama;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// A replica's paged KV cache: one <see cref="PagedKvCache"/> per device, each holding the layers
/// and KV heads of that device's shard, all with the same number of blocks and block size so a
/// sequence's single block table addresses all of them. Position p of a sequence lives in the
/// same slot of every shard.
/// </summary>
public sealed class ReplicaKvCache : IDisposable
{
    /// <summary>One device's slice: layers [Layers) and KV heads [KvHeads) of the model.</summary>
    public sealed record Shard(PagedKvCache Cache, IndexRange Layers, IndexRange KvHeads, Device Device);

    private readonly Shard[] shards;
    private readonly bool ownsCaches;
    private readonly LlamaConfig config;

    internal ReplicaKvCache(LlamaConfig config, IEnumerable<Shard> shards, bool ownsCaches = true)
    {
        this.shards = shards.ToArray();
        this.ownsCaches = ownsCaches;
        this.config = config;
        if (this.shards.Length == 0) throw new ArgumentException("a replica cache needs at least one shard", nameof(shards));
        var first = this.shards[0].Cache;
        foreach (var s in this.shards)
        {
            if (s.Cache.NumBlocks != first.NumBlocks || s.Cache.BlockSize != first.BlockSize)
                throw new ArgumentException("every shard of a replica cache must have the same number of blocks and block size", nameof(shards));
            if (s.Cache.NumLayers != s.Layers.Count || s.Cache.NumKvHeads != s.KvHeads.Count || s.Cache.HeadDim != config.EffectiveHeadDim)
                throw new ArgumentException($"cache shard for layers {s.Layers}, kv heads {s.KvHeads} has the wrong shape", nameof(shards));
        }
        NumLayers = config.NumLayers;
        NumKvHeads = config.NumKvHeads;
        HeadDim = config.EffectiveHeadDim;
        HoldsEveryLayer = Enumerable.Range(0, NumLayers).All(l => Enumerable.Range(0, NumKvHeads).All(h => this.shards.Any(s => s.Layers.Contains(l) && s.KvHeads.Contains(h))));
    }

    /// <summary>Wraps an existing single-device cache (not owned: disposing this leaves it alone).</summary>
    public static ReplicaKvCache Wrap(LlamaConfig config, PagedKvCache cache) =>
        new(config, [new Shard(cache, new IndexRange(0, config.NumLayers), new IndexRange(0, config.NumKvHeads), cache.Device)], ownsCaches: false);

    /// <summary>
    /// A new, owned cache of <paramref name="numBlocks"/> blocks with this one's layout (devices,
    /// layers and KV heads per shard, block size, dtype): a staging area for a sequence's K/V in transit.
    /// </summary>
    public ReplicaKvCache EmptyLike(int numBlocks)
    {
        var created = new List<Shard>();
        try
        {
            foreach (var s in shards)
                created.Add(s with
                {
                    Cache = new PagedKvCache(config with { NumLayers = s.Layers.Count, NumKvHeads = s.KvHeads.Count }, numBlocks, BlockSize, s.Device, DType),
                });
            return new ReplicaKvCache(config, created);
        }
        catch
        {
            foreach (var s in created) s.Cache.Dispose();
            throw;
        }
    }

    /// <summary>An owned cache of this one's model and dtype with one shard on the host holding every layer and KV head, one block of <paramref name="numTokens"/> slots.</summary>
    public ReplicaKvCache HostSingleBlock(int numTokens) => HostSingleBlock(config, numTokens, DType);

    /// <summary>An owned single-shard host cache of one block of <paramref name="numTokens"/> slots, every layer and KV head of <paramref name="config"/>'s model (<see cref="KvWire"/>'s layout-free form).</summary>
    public static ReplicaKvCache HostSingleBlock(LlamaConfig config, int numTokens, ScalarType dtype)
    {
        var cache = new PagedKvCache(config, 1, numTokens, CPU, dtype);
        return new ReplicaKvCache(config, [new Shard(cache, new IndexRange(0, config.NumLayers), new IndexRange(0, config.NumKvHeads), cache.Device)]);
    }

    public IReadOnlyList<Shard> Shards => shards;

    /// <summary>Every (layer, KV head) of the model has a shard here; false for the head of a replica whose later stages run elsewhere.</summary>
    public bool HoldsEveryLayer { get; }
    public int NumBlocks => shards[0].Cache.NumBlocks;
    public int BlockSize => shards[0].Cache.BlockSize;
    public int NumLayers { get; }
    public int NumKvHeads { get; }
    public int HeadDim { get; }
    public ScalarType DType => shards[0].Cache.DType;

    /// <summary>Bytes of K/V per block on each device, in shard order (the budget a block costs on each).</summary>
    public IReadOnlyList<long> BytesPerBlockPerShard =>
        shards.Select(s => 2L * s.Layers.Count * BlockSize * s.KvHeads.Count * HeadDim * PagedKvCache.ElementSize(DType)).ToArray();

    public void Dispose()
    {
        if (!ownsCaches) return;
        foreach (var s in shards) s.Cache.Dispose();
    }
}
