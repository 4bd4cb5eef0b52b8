using OServe.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Kv;

/// <summary>
/// Per-layer K and V storage shaped [numBlocks, blockSize, kvHeads, headDim] on the model's
/// device. The cache holds no allocation state: the engine's block manager decides which blocks a
/// sequence owns and passes them in as a block table.
/// </summary>
public sealed class PagedKvCache : IDisposable
{
    private readonly Tensor[] keys;
    private readonly Tensor[] values;

    public PagedKvCache(LlamaConfig config, int numBlocks, int blockSize, Device device, ScalarType dtype)
    {
        if (numBlocks <= 0) throw new ArgumentOutOfRangeException(nameof(numBlocks), numBlocks, "the KV cache needs at least one block");
        if (blockSize <= 0) throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "block size must be positive");
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        NumLayers = config.NumLayers;
        NumKvHeads = config.NumKvHeads;
        HeadDim = config.EffectiveHeadDim;
        Device = device;
        DType = dtype;
        keys = new Tensor[NumLayers];
        values = new Tensor[NumLayers];
        long[] shape = [numBlocks, blockSize, NumKvHeads, HeadDim];
        for (int l = 0; l < NumLayers; l++)
        {
            // Detached: the cache outlives any dispose scope it happens to be created in. In host
            // memory, a stopped replica's tensors are reused (zeroed) rather than mapped afresh.
            keys[l] = HostKvMemory.Zeros(shape, dtype, device);
            values[l] = HostKvMemory.Zeros(shape, dtype, device);
        }
    }

    public int NumBlocks { get; }
    public int BlockSize { get; }
    public int NumLayers { get; }
    public int NumKvHeads { get; }
    public int HeadDim { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    /// <summary>K of one layer, [numBlocks, blockSize, kvHeads, headDim].</summary>
    public Tensor Keys(int layer) => keys[layer];

    /// <summary>V of one layer, [numBlocks, blockSize, kvHeads, headDim].</summary>
    public Tensor Values(int layer) => values[layer];

    /// <summary>Bytes one block costs across all layers (K and V), for sizing the cache from a memory budget.</summary>
    public static long BytesPerBlock(LlamaConfig config, int blockSize, ScalarType dtype) =>
        2L * config.NumLayers * blockSize * config.KvDim * ElementSize(dtype);

    internal static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => throw new NotSupportedException($"dtype {dtype} is not supported for the KV cache"),
    };

    /// <summary>Slot of a token position in the flattened [numBlocks * blockSize] view.</summary>
    public long Slot(IReadOnlyList<int> blockTable, int position)
    {
        int blockIndex = position / BlockSize;
        if (blockIndex >= blockTable.Count)
            throw new ArgumentException($"position {position} needs block index {blockIndex}, but the block table has only {blockTable.Count} blocks");
        int block = blockTable[blockIndex];
        if ((uint)block >= (uint)NumBlocks)
            throw new ArgumentException($"block table entry {blockIndex} is block {block}, outside the cache's {NumBlocks} blocks");
        return (long)block * BlockSize + position % BlockSize;
    }

    /// <summary>Frees the cache; its host-memory tensors go back to <see cref="HostKvMemory"/> for the next cache.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var t in keys) HostKvMemory.Return(t);
        foreach (var t in values) HostKvMemory.Return(t);
    }

    private bool disposed;
}
