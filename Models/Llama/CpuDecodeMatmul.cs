using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// y = x · Wᵀ for a single row x on CPU: the batch-1 decode matmul, which is pure weight
/// streaming. libtorch hands it to a single-threaded BLAS gemv, so only one core's bandwidth is
/// used; this kernel gives each intra-op thread a contiguous block of W's rows (one dot product
/// per output), so every core streams its share sequentially. FP32 and BF16 weights (BF16 widened
/// in registers; accumulation in FP32, as BLAS does). AVX-512 only; elsewhere the model uses torch.
/// </summary>
internal static unsafe class CpuDecodeMatmul
{
    public static bool IsSupported => Avx512F.IsSupported;

    public static bool CanUse(Tensor x, Tensor weight) =>
        IsSupported
        && x.device_type == DeviceType.CPU
        && x.dim() == 2 && x.shape[0] == 1
        && weight.dtype is ScalarType.Float32 or ScalarType.BFloat16
        && x.dtype == weight.dtype
        && weight.is_contiguous()
        && weight.shape[1] % 16 == 0
        && weight.NumberOfElements * weight.ElementSize <= int.MaxValue;

    /// <param name="x">[1, in], same dtype as the weight.</param>
    /// <param name="weight">[out, in] contiguous, in a multiple of 16.</param>
    /// <returns>[1, out] in x's dtype.</returns>
    public static Tensor Multiply(Tensor x, Tensor weight)
    {
        int outFeatures = (int)weight.shape[0], inFeatures = (int)weight.shape[1];
        using var xf = x.to(ScalarType.Float32).contiguous();
        var y = empty([1, outFeatures], ScalarType.Float32);
        float* xp = (float*)Pointer(xf);
        float* yp = (float*)Pointer(y);
        byte* wp = Pointer(weight);
        bool bf16 = weight.dtype == ScalarType.BFloat16;

        // Blocks of at least 64 rows keep the per-worker hand-off small next to the streaming.
        int workers = Math.Max(1, Math.Min(torch.get_num_threads(), outFeatures / 64));
        if (workers == 1)
        {
            Rows(xp, wp, bf16, yp, inFeatures, 0, outFeatures);
        }
        else
        {
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
                Rows(xp, wp, bf16, yp, inFeatures, (int)((long)outFeatures * w / workers), (int)((long)outFeatures * (w + 1) / workers)));
        }
        if (!bf16) return y;
        var result = y.to(x.dtype);
        y.Dispose();
        return result;
    }

    private static byte* Pointer(Tensor t)
    {
        fixed (byte* p = t.bytes) return p; // native memory: the pointer stays valid while the tensor lives
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows(float* x, byte* w, bool bf16, float* y, int inFeatures, int first, int last)
    {
        for (int o = first; o < last; o++)
        {
            long offset = (long)o * inFeatures;
            y[o] = bf16 ? DotBf16(x, (ushort*)w + offset, inFeatures) : DotF32(x, (float*)w + offset, inFeatures);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotF32(float* x, float* w, int n)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i), Avx512F.LoadVector512(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i + 16), Avx512F.LoadVector512(x + i + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i + 32), Avx512F.LoadVector512(x + i + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i + 48), Avx512F.LoadVector512(x + i + 48), a3);
        }
        for (; i < n; i += 16) a0 = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(w + i), Avx512F.LoadVector512(x + i), a0);
        return Vector512.Sum(Avx512F.Add(Avx512F.Add(a0, a1), Avx512F.Add(a2, a3)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256(p)), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotBf16(float* x, ushort* w, int n)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            a0 = Avx512F.FusedMultiplyAdd(Widen(w + i), Avx512F.LoadVector512(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(Widen(w + i + 16), Avx512F.LoadVector512(x + i + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(Widen(w + i + 32), Avx512F.LoadVector512(x + i + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(Widen(w + i + 48), Avx512F.LoadVector512(x + i + 48), a3);
        }
        for (; i < n; i += 16) a0 = Avx512F.FusedMultiplyAdd(Widen(w + i), Avx512F.LoadVector512(x + i), a0);
        return Vector512.Sum(Avx512F.Add(Avx512F.Add(a0, a1), Avx512F.Add(a2, a3)));
    }
}
