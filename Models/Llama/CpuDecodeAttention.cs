using System.Buffers;
using OServe.Models.Kv;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// Decode attention read straight from the paged cache on CPU, one work item per (sequence, KV
/// head): each cached K and V row is read once, in place, and shared by the query heads of its
/// group. The torch path instead gathers every sequence's context into fresh [B, kvH, C, hd]
/// tensors first, which costs a full extra copy of the batch's KV each layer (the role vLLM's
/// paged-attention kernel plays on GPUs). FP32 accumulation; FP32 or BF16 cache.
/// </summary>
internal static unsafe class CpuDecodeAttention
{
    public static bool CanUse(Tensor q, PagedKvCache cache) =>
        Avx512F.IsSupported
        && q.device_type == DeviceType.CPU
        && cache.DType is ScalarType.Float32 or ScalarType.BFloat16
        && cache.HeadDim % 16 == 0 && cache.HeadDim <= 512;

    /// <param name="q">[B, heads, hd], already scaled.</param>
    /// <param name="rows">Per (sequence, kv head) run of <paramref name="paddedContext"/> rows of the [slots * kvH, hd] cache view.</param>
    /// <param name="contextLengths">Valid rows per sequence.</param>
    /// <returns>[B, heads * hd] in q's dtype.</returns>
    public static Tensor Attend(Tensor q, Tensor keyCache, Tensor valueCache, long[] rows, int[] contextLengths, int paddedContext, int kvHeads)
    {
        int b = (int)q.shape[0], heads = (int)q.shape[1], hd = (int)q.shape[2], group = heads / kvHeads;
        using var qf = q.to(ScalarType.Float32).contiguous();
        var output = empty([b, heads * hd], ScalarType.Float32);
        float* qp = (float*)Pointer(qf), op = (float*)Pointer(output);
        byte* kp = Pointer(keyCache), vp = Pointer(valueCache);
        bool bf16 = keyCache.dtype == ScalarType.BFloat16;

        Parallel.For(0, b * kvHeads, new ParallelOptions { MaxDegreeOfParallelism = torch.get_num_threads() }, item =>
        {
            int s = item / kvHeads, h = item % kvHeads, n = contextLengths[s];
            long rowBase = (long)item * paddedContext;
            var scores = ArrayPool<float>.Shared.Rent(group * n);
            try
            {
                fixed (float* sc = scores)
                {
                    float* qh = qp + ((long)s * heads + (long)h * group) * hd;
                    for (int c = 0; c < n; c++)
                    {
                        long row = rows[rowBase + c] * hd;
                        for (int g = 0; g < group; g++)
                            sc[g * n + c] = bf16 ? DotBf16(qh + g * hd, (ushort*)kp + row, hd) : DotF32(qh + g * hd, (float*)kp + row, hd);
                    }
                    for (int g = 0; g < group; g++) Softmax(sc + g * n, n);
                    float* oh = op + ((long)s * heads + (long)h * group) * hd;
                    new Span<float>(oh, group * hd).Clear();
                    for (int c = 0; c < n; c++)
                    {
                        long row = rows[rowBase + c] * hd;
                        for (int g = 0; g < group; g++)
                        {
                            if (bf16) AxpyBf16(sc[g * n + c], (ushort*)vp + row, oh + g * hd, hd);
                            else AxpyF32(sc[g * n + c], (float*)vp + row, oh + g * hd, hd);
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scores);
            }
        });
        if (q.dtype == ScalarType.Float32) return output;
        var result = output.to(q.dtype);
        output.Dispose();
        return result;
    }

    private static byte* Pointer(Tensor t)
    {
        fixed (byte* p = t.bytes) return p; // native memory: the pointer stays valid while the tensor lives
    }

    private static void Softmax(float* x, int n)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++) max = MathF.Max(max, x[i]);
        float sum = 0;
        for (int i = 0; i < n; i++) sum += x[i] = MathF.Exp(x[i] - max);
        float inv = 1 / sum;
        for (int i = 0; i < n; i++) x[i] *= inv;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(p)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotF32(float* q, float* k, int hd)
    {
        var acc = Vector512<float>.Zero;
        for (int i = 0; i < hd; i += 16) acc = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(q + i), Avx512F.LoadVector512(k + i), acc);
        return Vector512.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotBf16(float* q, ushort* k, int hd)
    {
        var acc = Vector512<float>.Zero;
        for (int i = 0; i < hd; i += 16) acc = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(q + i), Widen(k + i), acc);
        return Vector512.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AxpyF32(float a, float* v, float* y, int hd)
    {
        var av = Vector512.Create(a);
        for (int i = 0; i < hd; i += 16) Avx512F.Store(y + i, Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(v + i), av, Avx512F.LoadVector512(y + i)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AxpyBf16(float a, ushort* v, float* y, int hd)
    {
        var av = Vector512.Create(a);
        for (int i = 0; i < hd; i += 16) Avx512F.Store(y + i, Avx512F.FusedMultiplyAdd(Widen(v + i), av, Avx512F.LoadVector512(y + i)));
    }
}
