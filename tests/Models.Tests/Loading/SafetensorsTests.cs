using System.Text;
using OServe.Models.Loading;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Loading;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("oserve-st-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Theory]
    [InlineData(ScalarType.Float32, "F32")]
    [InlineData(ScalarType.Float16, "F16")]
    [InlineData(ScalarType.BFloat16, "BF16")]
    public void RoundTripKeepsValuesDtypeAndShape(ScalarType dtype, string expectedName)
    {
        using var a = arange(0, 24, dtype: ScalarType.Float32).div(8).reshape(2, 3, 4).to(dtype);
        using var b = tensor(new float[] { -1.5f, 2.25f }).to(dtype);
        string path = Path.Combine(dir, "rt.safetensors");
        SafetensorsWriter.Write(path, [new("a", a), new("b", b)], new Dictionary<string, string> { ["format"] = "pt" });

        using var file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(expectedName, file.Tensors["a"].DType);
        using var a2 = file.Read("a");
        using var b2 = file.Read("b");
        Assert.Equal(dtype, a2.dtype);
        Assert.Equal(new long[] { 2, 3, 4 }, a2.shape);
        Assert.True(a2.allclose(a, rtol: 0, atol: 0));
        Assert.True(b2.allclose(b, rtol: 0, atol: 0));
        Assert.Equal(-1.5f, b2.to(ScalarType.Float32)[0].item<float>());
    }

    [Fact]
    public void TruncatedFileIsRejectedNamingTheTensor()
    {
        string path = WriteSample();
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^4]);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("tensor 'w'", e.Message);
        Assert.Contains("run past the end of the data", e.Message);
    }

    [Fact]
    public void FileShorterThanTheLengthPrefixIsRejected()
    {
        string path = Path.Combine(dir, "tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("too short", e.Message);
    }

    [Fact]
    public void HeaderLengthPastEndOfFileIsRejected()
    {
        string path = WriteRaw("{}", headerLengthOverride: 1000);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("header length 1000 runs past the end of the file", e.Message);
    }

    [Fact]
    public void OffsetsThatDisagreeWithShapeAreRejected()
    {
        string path = WriteRaw("""{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}""", dataBytes: 16);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("tensor 'w'", e.Message);
        Assert.Contains("hold 12 bytes, but F32 with shape [2, 2] needs 16", e.Message);
    }

    [Fact]
    public void ReversedOffsetsAreRejected()
    {
        string path = WriteRaw("""{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}""", dataBytes: 16);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("end before they begin", e.Message);
    }

    [Fact]
    public void OverlappingTensorsAreRejected()
    {
        string path = WriteRaw(
            """{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", dataBytes: 12);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("tensors 'x' [0, 8) and 'y' [4, 12) overlap", e.Message);
    }

    [Fact]
    public void UnknownDtypeIsRejected()
    {
        string path = WriteRaw("""{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}""", dataBytes: 2);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("tensor 'w': unknown dtype 'Q4'", e.Message);
    }

    [Fact]
    public void MalformedJsonIsRejected()
    {
        string path = WriteRaw("{\"w\": [", dataBytes: 0);
        var e = Assert.Throws<InvalidDataException>(() => SafetensorsFile.Open(path));
        Assert.Contains("not valid JSON", e.Message);
    }

    [Fact]
    public void ReadingAMissingTensorNamesIt()
    {
        using var file = SafetensorsFile.Open(WriteSample());
        var e = Assert.Throws<InvalidDataException>(() => file.Read("nope"));
        Assert.Contains("no tensor named 'nope'", e.Message);
    }

    private string WriteSample()
    {
        string path = Path.Combine(dir, "sample.safetensors");
        using var w = ones(4, 4);
        SafetensorsWriter.Write(path, [new("w", w)]);
        return path;
    }

    private string WriteRaw(string header, int dataBytes = 0, ulong? headerLengthOverride = null)
    {
        string path = Path.Combine(dir, "raw.safetensors");
        var headerBytes = Encoding.UTF8.GetBytes(header);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes(headerLengthOverride ?? (ulong)headerBytes.Length));
        f.Write(headerBytes);
        f.Write(new byte[dataBytes]);
        return path;
    }
}
