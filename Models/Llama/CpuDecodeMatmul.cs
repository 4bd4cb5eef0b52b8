using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// y = x · Wᵀ for a few rows x on CPU: the small-batch decode matmul, which is pure weight
/// streaming. libtorch hands one row to a single-threaded BLAS gemv, and 2-8 rows to a GEMM path
/// that is slower still here (a 4-row step of the 50k-vocabulary head took 3x the 1-row one). This
/// kernel gives each intra-op thread a contiguous block of W's rows and reads each weight row once
/// for every x row (dot products in groups of four rows), so every core streams its share
/// sequentially and a step's time grows smoothly with its rows. FP32 and BF16 weights (BF16 widened
/// in registers; accumulation in FP32, as BLAS does). AVX-512 only; elsewhere the model uses torch.
/// </summary>
internal static unsafe class CpuDecodeMatmul
{
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>
    /// Rows always taken. Measured here (2 cores, FP32): the kernel beats torch at 1-4 rows on every
    /// shape tried (50257x256: 2.2 vs 8.7 ms at 4 rows; 11008x4096: 16.5 vs 24.1 ms), is even at 6-8,
    /// and loses from 12 rows on, where GEMM's cache blocking wins over re-reading x per weight row.
    /// </summary>
    public const int MaxRows = 4;

    /// <summary>
    /// Rows also taken by a wide matrix over a thin input (a large vocabulary head on a small model):
    /// all of x stays in L1 while W streams, and torch's GEMM is at its worst there (50257x256 at
    /// 6/8/12/16 rows: 3.5/3.4/5.0/6.8 ms against torch's 8.8/8.9/9.8/10.0 ms).
    /// </summary>
    public const int MaxRowsWideThin = 16;

    private const int WideOutFeatures = 8192, ThinInputFloats = 4096;

    /// <summary>Whether the kernel takes <paramref name="rows"/> rows of x · Wᵀ for W of [outFeatures, inFeatures].</summary>
    public static bool TakesRows(long rows, long outFeatures, long inFeatures) =>
        rows >= 1 && (rows <= MaxRows
            || (rows <= MaxRowsWideThin && outFeatures >= WideOutFeatures && rows * inFeatures <= ThinInputFloats));

    /// <summary>
    /// Row counts r at which a model's matmuls change path between r and r + 1 rows (the layers at
    /// <see cref="MaxRows"/>; a wide, thin vocabulary head also at <see cref="MaxRowsWideThin"/>):
    /// where a step's time jumps. Empty without AVX-512 (torch everywhere).
    /// </summary>
    public static IReadOnlyList<int> RowBoundaries(LlamaConfig c)
    {
        if (!IsSupported) return [];
        List<int> rows = [MaxRows];
        if (TakesRows(MaxRowsWideThin, c.VocabSize, c.Dim)) rows.Add(MaxRowsWideThin);
        return rows;
    }

    public static bool CanUse(Tensor x, Tensor weight) =>
        IsSupported
        && x.device_type == DeviceType.CPU
        && x.dim() == 2 && weight.dim() == 2 && TakesRows(x.shape[0], weight.shape[0], weight.shape[1])
        && weight.dtype is ScalarType.Float32 or ScalarType.BFloat16
        && x.dtype == weight.dtype
        && weight.is_contiguous()
        && weight.shape[1] % 16 == 0
        && weight.NumberOfElements * weight.ElementSize <= int.MaxValue;

    /// <param name="x">[rows, in], rows as <see cref="TakesRows"/> allows, same dtype as the weight.</param>
    /// <param name="weight">[out, in] contiguous, in a multiple of 16.</param>
    /// <returns>[rows, out] in x's dtype.</returns>
    public static Tensor Multiply(Tensor x, Tensor weight)
    {
        int outFeatures = (int)weight.shape[0], inFeatures = (int)weight.shape[1], rows = (int)x.shape[0];
        using var xf = x.to(ScalarType.Float32).contiguous();
        var y = empty([rows, outFeatures], ScalarType.Float32);
        float* xp = (float*)Pointer(xf);
        float* yp = (float*)Pointer(y);
        byte* wp = Pointer(weight);
        bool bf16 = weight.dtype == ScalarType.BFloat16;

        // Blocks of at least 64 rows keep the per-worker hand-off small next to the streaming.
        int workers = Math.Max(1, Math.Min(torch.get_num_threads(), outFeatures / 64));
        if (workers == 1)
        {
            Rows(xp, rows, wp, bf16, yp, inFeatures, outFeatures, 0, outFeatures);
        }
        else
        {
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
                Rows(xp, rows, wp, bf16, yp, inFeatures, outFeatures, (int)((long)outFeatures * w / workers), (int)((long)outFeatures * (w + 1) / workers)));
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

    /// <summary>Outputs [first, last) of every row: y[r, o] = x[r] · w[o], each weight row read once for up to four x rows.</summary>
    private static void Rows(float* x, int rows, byte* w, bool bf16, float* y, int inFeatures, int outFeatures, int first, int last)
    {
        if (bf16) Rows<Bf16Weights>(x, rows, w, y, inFeatures, outFeatures, first, last);
        else Rows<F32Weights>(x, rows, w, y, inFeatures, outFeatures, first, last);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows<TW>(float* x, int rows, byte* w, float* y, int inFeatures, int outFeatures, int first, int last) where TW : struct, IWeights
    {
        for (int o = first; o < last; o++)
        {
            byte* row = w + (long)o * inFeatures * TW.ElementSize;
            if (rows == 1)
            {
                y[o] = Dot<TW>(x, row, inFeatures);
                continue;
            }
            for (int r = 0; r < rows; r += 4)
            {
                // A group short of four repeats its first row; the repeats are computed and dropped.
                float* x0 = x + (long)r * inFeatures;
                float* x1 = r + 1 < rows ? x0 + inFeatures : x0;
                float* x2 = r + 2 < rows ? x0 + 2L * inFeatures : x0;
                float* x3 = r + 3 < rows ? x0 + 3L * inFeatures : x0;
                var sums = Dot4<TW>(x0, x1, x2, x3, row, inFeatures);
                for (int k = 0; k < 4 && r + k < rows; k++)
                    y[(long)(r + k) * outFeatures + o] = sums.GetElement(k);
            }
        }
    }

    /// <summary>How a weight row's elements become FP32 lanes; a struct, so each kernel is compiled per dtype.</summary>
    private interface IWeights
    {
        static abstract int ElementSize { get; }
        /// <summary>Elements [i, i + 16) of the row as FP32.</summary>
        static abstract Vector512<float> Load(byte* row, int i);
    }

    private struct F32Weights : IWeights
    {
        public static int ElementSize => sizeof(float);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, int i) => Avx512F.LoadVector512((float*)row + i);
    }

    private struct Bf16Weights : IWeights
    {
        public static int ElementSize => sizeof(ushort);
        // BF16 is the top half of an FP32: widen and shift left by 16.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, int i) =>
            Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Avx.LoadVector256((ushort*)row + i)), 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot<TW>(float* x, byte* w, int n) where TW : struct, IWeights
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            a0 = Avx512F.FusedMultiplyAdd(TW.Load(w, i), Avx512F.LoadVector512(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(TW.Load(w, i + 16), Avx512F.LoadVector512(x + i + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(TW.Load(w, i + 32), Avx512F.LoadVector512(x + i + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(TW.Load(w, i + 48), Avx512F.LoadVector512(x + i + 48), a3);
        }
        for (; i < n; i += 16) a0 = Avx512F.FusedMultiplyAdd(TW.Load(w, i), Avx512F.LoadVector512(x + i), a0);
        return Vector512.Sum(Avx512F.Add(Avx512F.Add(a0, a1), Avx512F.Add(a2, a3)));
    }

    // Dot4 computes each of its rows with exactly the operations of the one-row Dot (four
    // accumulators over 64-wide strides, the 16-wide tail into the first, the same final sum), so a
    // row's result does not depend on the rows it shares a call with: a sequence decodes the same
    // bits alone and in a batch.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector128<float> Dot4<TW>(float* x0, float* x1, float* x2, float* x3, byte* w, int n) where TW : struct, IWeights
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default;
        int i = 0;
        for (; i + 64 <= n; i += 64)
        {
            var w0 = TW.Load(w, i);
            var w1 = TW.Load(w, i + 16);
            var w2 = TW.Load(w, i + 32);
            var w3 = TW.Load(w, i + 48);
            a0 = Avx512F.FusedMultiplyAdd(w0, Avx512F.LoadVector512(x0 + i), a0);
            a1 = Avx512F.FusedMultiplyAdd(w1, Avx512F.LoadVector512(x0 + i + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(w2, Avx512F.LoadVector512(x0 + i + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd(w3, Avx512F.LoadVector512(x0 + i + 48), a3);
            b0 = Avx512F.FusedMultiplyAdd(w0, Avx512F.LoadVector512(x1 + i), b0);
            b1 = Avx512F.FusedMultiplyAdd(w1, Avx512F.LoadVector512(x1 + i + 16), b1);
            b2 = Avx512F.FusedMultiplyAdd(w2, Avx512F.LoadVector512(x1 + i + 32), b2);
            b3 = Avx512F.FusedMultiplyAdd(w3, Avx512F.LoadVector512(x1 + i + 48), b3);
            c0 = Avx512F.FusedMultiplyAdd(w0, Avx512F.LoadVector512(x2 + i), c0);
            c1 = Avx512F.FusedMultiplyAdd(w1, Avx512F.LoadVector512(x2 + i + 16), c1);
            c2 = Avx512F.FusedMultiplyAdd(w2, Avx512F.LoadVector512(x2 + i + 32), c2);
            c3 = Avx512F.FusedMultiplyAdd(w3, Avx512F.LoadVector512(x2 + i + 48), c3);
            d0 = Avx512F.FusedMultiplyAdd(w0, Avx512F.LoadVector512(x3 + i), d0);
            d1 = Avx512F.FusedMultiplyAdd(w1, Avx512F.LoadVector512(x3 + i + 16), d1);
            d2 = Avx512F.FusedMultiplyAdd(w2, Avx512F.LoadVector512(x3 + i + 32), d2);
            d3 = Avx512F.FusedMultiplyAdd(w3, Avx512F.LoadVector512(x3 + i + 48), d3);
        }
        for (; i < n; i += 16)
        {
            var wi = TW.Load(w, i);
            a0 = Avx512F.FusedMultiplyAdd(wi, Avx512F.LoadVector512(x0 + i), a0);
            b0 = Avx512F.FusedMultiplyAdd(wi, Avx512F.LoadVector512(x1 + i), b0);
            c0 = Avx512F.FusedMultiplyAdd(wi, Avx512F.LoadVector512(x2 + i), c0);
            d0 = Avx512F.FusedMultiplyAdd(wi, Avx512F.LoadVector512(x3 + i), d0);
        }
        return Vector128.Create(
            Vector512.Sum(Avx512F.Add(Avx512F.Add(a0, a1), Avx512F.Add(a2, a3))),
            Vector512.Sum(Avx512F.Add(Avx512F.Add(b0, b1), Avx512F.Add(b2, b3))),
            Vector512.Sum(Avx512F.Add(Avx512F.Add(c0, c1), Avx512F.Add(c2, c3))),
            Vector512.Sum(Avx512F.Add(Avx512F.Add(d0, d1), Avx512F.Add(d2, d3))));
    }
}
