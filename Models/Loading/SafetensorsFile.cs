using System.Text.Json;
using Microsoft.Win32.SafeHandles;
using TorchSharp;

namespace OServe.Models.Loading;

public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>
/// Reader of the safetensors format: an 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data. Every
/// offset and size is checked against the file length and against the other tensors at open, so
/// a bad file fails up front with the file and tensor named, never half-way through a load.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;
    private readonly SafeFileHandle handle;
    private readonly long dataStart;

    private SafetensorsFile(string path, SafeFileHandle handle, long dataStart, Dictionary<string, SafetensorsEntry> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        this.handle = handle;
        this.dataStart = dataStart;
        Tensors = tensors;
        Metadata = metadata;
    }

    public string Path { get; }
    public IReadOnlyDictionary<string, SafetensorsEntry> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public static SafetensorsFile Open(string path)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            if (fileLength < 8) throw Bad(path, $"the file is {fileLength} bytes, too short for the 8-byte header length");
            Span<byte> lengthBytes = stackalloc byte[8];
            RandomAccess.Read(handle, lengthBytes, 0);
            ulong headerLength = BitConverter.ToUInt64(lengthBytes);
            if (headerLength > (ulong)(fileLength - 8))
                throw Bad(path, $"header length {headerLength} runs past the end of the file ({fileLength} bytes; truncated?)");
            if (headerLength > MaxHeaderBytes) throw Bad(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            var header = new byte[headerLength];
            RandomAccess.Read(handle, header, 8);
            long dataStart = 8 + (long)headerLength;
            var (tensors, metadata) = ParseHeader(path, header, fileLength - dataStart);
            return new SafetensorsFile(path, handle, dataStart, tensors, metadata);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>A new CPU tensor with the stored dtype and shape.</summary>
    public torch.Tensor Read(string name)
    {
        if (!Tensors.TryGetValue(name, out var e)) throw Bad(Path, $"no tensor named '{name}'");
        var dtype = SafetensorsDType.ToTorch(e.DType)
            ?? throw Bad(Path, $"tensor '{name}': dtype {e.DType} cannot be loaded (no TorchSharp equivalent)");
        if (e.ByteLength > int.MaxValue) throw Bad(Path, $"tensor '{name}' is {e.ByteLength} bytes; tensors over 2 GiB are not supported");
        var t = torch.empty(e.Shape, dtype);
        try
        {
            int read = RandomAccess.Read(handle, t.bytes, dataStart + e.Begin);
            if (read != e.ByteLength) throw Bad(Path, $"tensor '{name}': read {read} of {e.ByteLength} bytes (file changed while loading?)");
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    public void Dispose() => handle.Dispose();

    private static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Bad(path, $"the header is not valid JSON: {e.Message}");
        }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "the header is not a JSON object");

        var tensors = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__")
            {
                if (property.Value.ValueKind != JsonValueKind.Object) throw Bad(path, "__metadata__ is not an object");
                foreach (var m in property.Value.EnumerateObject())
                    metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                continue;
            }
            tensors[property.Name] = ParseEntry(path, property.Name, property.Value, dataLength);
        }

        var byOffset = tensors.Values.OrderBy(e => e.Begin).ThenBy(e => e.End).ToArray();
        for (int i = 1; i < byOffset.Length; i++)
        {
            var (a, b) = (byOffset[i - 1], byOffset[i]);
            if (b.Begin < a.End && b.ByteLength > 0 && a.ByteLength > 0)
                throw Bad(path, $"tensors '{a.Name}' [{a.Begin}, {a.End}) and '{b.Name}' [{b.Begin}, {b.End}) overlap");
        }
        return (tensors, metadata);
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement value, long dataLength)
    {
        string where = $"tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object) throw Bad(path, $"{where}: entry is not an object");
        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad(path, $"{where}: missing string field 'dtype'");
        string dtype = dtypeElement.GetString()!;
        if (!SafetensorsDType.IsKnown(dtype)) throw Bad(path, $"{where}: unknown dtype '{dtype}'");
        var shape = ReadLongs(path, where, value, "shape", expectedCount: null);
        var offsets = ReadLongs(path, where, value, "data_offsets", expectedCount: 2);
        long begin = offsets[0], end = offsets[1];
        if (end < begin) throw Bad(path, $"{where}: data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength)
            throw Bad(path, $"{where}: data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes; truncated file?)");
        long elements = 1;
        foreach (var d in shape) elements = checked(elements * d);
        long expected = checked(elements * SafetensorsDType.ElementSize(dtype));
        if (end - begin != expected)
            throw Bad(path, $"{where}: data_offsets [{begin}, {end}] hold {end - begin} bytes, but {dtype} with shape [{string.Join(", ", shape)}] needs {expected}");
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    private static long[] ReadLongs(string path, string where, JsonElement value, string field, int? expectedCount)
    {
        if (!value.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw Bad(path, $"{where}: missing array field '{field}'");
        var result = new List<long>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long v) || v < 0)
                throw Bad(path, $"{where}: '{field}' must hold non-negative integers, got {item.GetRawText()}");
            result.Add(v);
        }
        if (expectedCount is int n && result.Count != n) throw Bad(path, $"{where}: '{field}' must have {n} entries, got {result.Count}");
        return result.ToArray();
    }

    private static InvalidDataException Bad(string path, string message) => new($"{path}: {message}");
}
