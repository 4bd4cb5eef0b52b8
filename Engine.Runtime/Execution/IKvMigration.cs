using OServe.Engine.Scheduling;
using OServe.Models.Parallelism;

namespace OServe.Engine.Execution;

/// <summary>
/// A runner whose KV cache entries can leave with a sequence and arrive on another replica:
/// the real runner copies cache blocks; a runner without cache memory need not implement it
/// (a moved sequence then recomputes its context on the target).
/// </summary>
public interface IKvMigration
{
    /// <summary>Copies the KV entries of positions [0, NumComputedTokens) of <paramref name="seq"/> (call before the scheduler frees its blocks).</summary>
    KvBlocks Export(Sequence seq);

    /// <summary>Writes <paramref name="kv"/> into the blocks the target scheduler gave <paramref name="seq"/>.</summary>
    void Import(Sequence seq, KvBlocks kv);

    /// <summary>False when this replica's cache holds only some of the model's layers (its later pipeline stages run in another process): its sequences then recompute when they move, either way.</summary>
    bool CanMigrate => true;
}

/// <summary>
/// A sequence's KV entries in transit: a staging cache in the source replica's layout (its
/// devices, layers and KV heads per shard) whose blocks 0..n-1 hold positions [0, NumTokens);
/// the tail of the last block is garbage the target never reads. The target re-slices it to its
/// own layout on import (<see cref="OServe.Models.Parallelism.KvMigration"/>). Owns the cache.
/// </summary>
public sealed class KvBlocks(OServe.Models.Parallelism.ReplicaKvCache blocks, int numTokens) : IDisposable
{
    public OServe.Models.Parallelism.ReplicaKvCache Blocks { get; } = blocks;

    /// <summary>Positions whose entries are valid.</summary>
    public int NumTokens { get; } = numTokens;

    public long Bytes => Blocks.BytesPerBlockPerShard.Sum() * Blocks.NumBlocks;

    /// <summary>The block table of its positions: blocks 0..n-1.</summary>
    public IReadOnlyList<int> BlockTable => TableOf(Blocks.NumBlocks);

    public static int[] TableOf(int numBlocks) => Enumerable.Range(0, numBlocks).ToArray();

    /// <summary>Its positions as layout-free bytes, for another process (<see cref="KvWire.Write"/>).</summary>
    public byte[] ToWire(out KvWire.Header header) => KvWire.Write(Blocks, BlockTable, NumTokens, out header);

    /// <summary>Bytes <see cref="ToWire"/> made, as a host staging cache (<see cref="KvWire.Read"/>: refused when they belong to another model than <paramref name="config"/>).</summary>
    public static KvBlocks FromWire(OServe.Models.Llama.LlamaConfig config, KvWire.Header header, ReadOnlySpan<byte> bytes) =>
        new(KvWire.Read(config, header, bytes), header.NumTokens);

    public void Dispose() => Blocks.Dispose();
}
