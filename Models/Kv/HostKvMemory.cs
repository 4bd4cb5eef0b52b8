using System.Collections.Concurrent;
using static TorchSharp.torch;

namespace OServe.Models.Kv;

/// <summary>
/// KV cache tensors in host memory that a stopped replica gave back, kept for the next replica
/// that asks for the same shape: on a CPU device a live switch's new replicas then start on memory
/// that is already mapped, where fresh tensors page-faulted in their whole cache (0.25 GiB per demo
/// replica; with the engine's pooled threads, the most of a 0.4-1.1 s switch on this project's
/// 2-core VM). A reused tensor is zeroed, as a new one is. CUDA caches freed memory in its own
/// allocator, so only CPU tensors come here. At most <see cref="MaxBytes"/> are kept.
/// </summary>
internal static class HostKvMemory
{
    private static readonly ConcurrentDictionary<(string Shape, ScalarType DType), ConcurrentBag<Tensor>> Free = new();
    private static long keptBytes;

    /// <summary>Bytes of freed KV tensors kept for reuse at most (beyond that a returned tensor is freed).</summary>
    public static long MaxBytes { get; } = 1L << 30;

    /// <summary>A zeroed tensor of <paramref name="shape"/>: a kept one when there is one (CPU only), else a new one.</summary>
    public static Tensor Zeros(long[] shape, ScalarType dtype, Device device)
    {
        if (device.type == TorchSharp.DeviceType.CPU && Free.TryGetValue(Key(shape, dtype), out var bag) && bag.TryTake(out var kept))
        {
            Interlocked.Add(ref keptBytes, -Bytes(kept));
            kept.zero_();
            return kept;
        }
        return zeros(shape, dtype, device).DetachFromDisposeScope();
    }

    /// <summary>Takes <paramref name="tensor"/> back: kept for reuse if it is a CPU tensor and there is room, else disposed.</summary>
    public static void Return(Tensor tensor)
    {
        long bytes = Bytes(tensor);
        if (tensor.device.type != TorchSharp.DeviceType.CPU || Interlocked.Add(ref keptBytes, bytes) > MaxBytes)
        {
            if (tensor.device.type == TorchSharp.DeviceType.CPU) Interlocked.Add(ref keptBytes, -bytes);
            tensor.Dispose();
            return;
        }
        Free.GetOrAdd(Key(tensor.shape, tensor.dtype), _ => []).Add(tensor);
    }

    /// <summary>Tensors of this shape kept for reuse now.</summary>
    internal static int KeptCount(long[] shape, ScalarType dtype) => Free.TryGetValue(Key(shape, dtype), out var bag) ? bag.Count : 0;

    private static (string, ScalarType) Key(long[] shape, ScalarType dtype) => (string.Join('x', shape), dtype);

    private static long Bytes(Tensor t) => t.NumberOfElements * t.ElementSize;
}
