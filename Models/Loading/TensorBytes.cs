using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Loading;

/// <summary>Raw little-endian bytes to and from CPU tensors.</summary>
internal static class TensorBytes
{
    public static Tensor FromBytes(ReadOnlySpan<byte> data, ScalarType dtype, long[] shape)
    {
        var t = empty(shape, dtype);
        data.CopyTo(t.bytes);
        return t;
    }

    public static byte[] ToBytes(Tensor t)
    {
        using var cpu = t.cpu().contiguous();
        return cpu.bytes.ToArray();
    }
}
