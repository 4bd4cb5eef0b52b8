using System.Text.Json;
using TorchSharp;

namespace OServe.Models.Loading;

/// <summary>Writes tensors in the safetensors format (header padded to 8 bytes, as the reference implementation does).</summary>
public static class SafetensorsWriter
{
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var payloads = new List<(string Name, string DType, long[] Shape, byte[] Data)>();
        foreach (var (name, t) in tensors)
            payloads.Add((name, SafetensorsDType.FromTorch(t.dtype), t.shape, TensorBytes.ToBytes(t)));

        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is not null)
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var p in payloads)
            {
                w.WriteStartObject(p.Name);
                w.WriteString("dtype", p.DType);
                w.WriteStartArray("shape");
                foreach (var d in p.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + p.Data.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += p.Data.Length;
            }
            w.WriteEndObject();
        }
        var header = json.ToArray().ToList();
        while (header.Count % 8 != 0) header.Add((byte)' ');

        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((ulong)header.Count));
        file.Write(header.ToArray());
        foreach (var p in payloads) file.Write(p.Data);
    }
}
