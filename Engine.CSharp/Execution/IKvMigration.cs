using OServe.Engine.Scheduling;

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
}

/// <summary>
/// A sequence's KV entries in transit, per layer K and V shaped [numBlocks, blockSize, kvHeads,
/// headDim] (whole blocks: the tail of the last block is garbage that the target never reads).
/// Owns its tensors.
/// </summary>
public sealed class KvBlocks(TorchSharp.torch.Tensor[] keys, TorchSharp.torch.Tensor[] values, int numTokens) : IDisposable
{
    public IReadOnlyList<TorchSharp.torch.Tensor> Keys { get; } = keys;
    public IReadOnlyList<TorchSharp.torch.Tensor> Values { get; } = values;

    /// <summary>Positions whose entries are valid.</summary>
    public int NumTokens { get; } = numTokens;

    public long Bytes => Keys.Sum(k => k.NumberOfElements * k.ElementSize) + Values.Sum(v => v.NumberOfElements * v.ElementSize);

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
