using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// Rotary position embedding in the rotate-half convention (Hugging Face): dimension p of a head
/// is paired with p + headDim/2. llama2.c/Meta checkpoints pair interleaved dimensions (2p, 2p+1);
/// their q/k projections are permuted at load (<see cref="Loading.RotaryLayout"/>) so one
/// convention serves both.
/// </summary>
internal sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor cos;
    private readonly Tensor sin;
    private readonly int halfDim;

    public RotaryEmbedding(int headDim, int maxSeqLen, double theta, Device device, ScalarType dtype)
    {
        halfDim = headDim / 2;
        (cos, sin) = Tables(headDim, maxSeqLen, theta, device, dtype);
    }

    /// <summary>cos and sin tables [maxSeqLen, headDim] in <paramref name="dtype"/> on <paramref name="device"/> (detached: the caller owns them).</summary>
    public static (Tensor Cos, Tensor Sin) Tables(int headDim, int maxSeqLen, double theta, Device device, ScalarType dtype)
    {
        int halfDim = headDim / 2;
        var cosTable = new float[(long)maxSeqLen * headDim];
        var sinTable = new float[(long)maxSeqLen * headDim];
        // Single-precision arithmetic as llama2.c's run.c does it, so greedy outputs match it bit for bit.
        for (int pos = 0; pos < maxSeqLen; pos++)
        {
            for (int p = 0; p < halfDim; p++)
            {
                float freq = 1.0f / MathF.Pow((float)theta, 2 * p / (float)headDim);
                float angle = pos * freq;
                long row = (long)pos * headDim;
                cosTable[row + p] = cosTable[row + p + halfDim] = MathF.Cos(angle);
                sinTable[row + p] = sinTable[row + p + halfDim] = MathF.Sin(angle);
            }
        }
        using var c = tensor(cosTable, [maxSeqLen, headDim]);
        using var s = tensor(sinTable, [maxSeqLen, headDim]);
        return (c.to(dtype, device).DetachFromDisposeScope(), s.to(dtype, device).DetachFromDisposeScope());
    }

    /// <summary>cos and sin rows for the given positions, shaped [tokens, 1, headDim] to broadcast over heads.</summary>
    public (Tensor Cos, Tensor Sin) At(Tensor positions) =>
        (cos.index_select(0, positions).unsqueeze(1), sin.index_select(0, positions).unsqueeze(1));

    /// <summary>x: [tokens, heads, headDim]; returns a new tensor.</summary>
    public Tensor Apply(Tensor x, Tensor cosAt, Tensor sinAt)
    {
        var x1 = x.narrow(-1, 0, halfDim);
        var x2 = x.narrow(-1, halfDim, halfDim);
        var rotated = cat([x2.neg(), x1], -1);
        return x.mul(cosAt).Plus_(rotated.mul_(sinAt));
    }

    public void Dispose()
    {
        cos.Dispose();
        sin.Dispose();
    }
}
