using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Loading;

/// <summary>Raw little-endian bytes to and from CPU tensors.</summary>
public static class TensorBytes
{
    /// <summary>A tensor of <paramref name="shape"/> and <paramref name="dtype"/> holding <paramref name="data"/>, which must be exactly its size.</summary>
    public static Tensor FromBytes(ReadOnlySpan<byte> data, ScalarType dtype, long[] shape)
    {
        var t = empty(shape, dtype);
        long size = t.NumberOfElements * t.ElementSize;
        if (data.Length != size)
        {
            t.Dispose();
            throw new InvalidDataException($"a tensor of shape [{string.Join(", ", shape)}] and dtype {dtype} needs {size} bytes, got {data.Length}");
        }
        data.CopyTo(t.bytes);
        return t;
    }

    public static byte[] ToBytes(Tensor t)
    {
        using var cpu = t.cpu().contiguous();
        return cpu.bytes.ToArray();
    }
}
