using System.Text.Json;

namespace OServe.Engine.Profiling;

/// <summary>One timed shape of a calibration file and its milliseconds per layer (decode: eager, and replayed from a CUDA graph when recorded).</summary>
public sealed record CalibrationShape(string Kind, int Seqs, int Tokens, int Batch, int Context, double MsPerLayer, double? MsPerLayerGraph)
{
    /// <summary>Tokens this shape puts through the weight matmuls in one step.</summary>
    public int StepTokens => Kind switch { "prefill" => Seqs * Tokens, "decode" => Batch, _ => Batch + Tokens };

    /// <summary>KV tokens the shape needs cached (decode rows' contexts).</summary>
    public long CachedTokens => Kind == "prefill" ? 0 : (long)Batch * Context;

    public override string ToString() => Kind switch
    {
        "prefill" => $"prefill {Seqs}x{Tokens}",
        "decode" => $"decode b{Batch} c{Context}",
        _ => $"mixed b{Batch} c{Context} + {Tokens}",
    };
}

/// <summary>Per-GPU step times of one model's tensor-parallel rank (one row of ../shared/calibration/h200-shapes.json).</summary>
public sealed record CalibrationEntry(string Model, int Tp, IReadOnlyList<CalibrationShape> Shapes);

/// <summary>Reads the calibration file <c>gpu_shapes.py</c> writes (see ../shared/calibration/README.md).</summary>
public static class CalibrationShapes
{
    public sealed record File(string Gpu, string Torch, double GemmTflops, double CopyGbps, IReadOnlyList<CalibrationEntry> Entries);

    public static File Read(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            string Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ToString() : "";
            double Number(JsonElement e, string name, string where) =>
                e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                    : throw new InvalidDataException($"{path}: {where}: no number '{name}'");
            int Int(JsonElement e, string name, string where) => (int)Number(e, name, where);
            if (!root.TryGetProperty("shapes", out var shapes) || shapes.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{path}: no 'shapes' array");
            var refs = root.TryGetProperty("references", out var r) ? r : default;
            var entries = new List<CalibrationEntry>();
            int i = 0;
            foreach (var s in shapes.EnumerateArray())
            {
                string where = $"shapes[{i++}]";
                var list = new List<CalibrationShape>();
                if (s.TryGetProperty("prefill", out var prefill))
                    foreach (var p in prefill.EnumerateArray())
                        list.Add(new("prefill", Int(p, "seqs", where), Int(p, "tokens", where), 0, 0, Number(p, "ms_per_layer", where), null));
                if (s.TryGetProperty("decode", out var decode))
                    foreach (var d in decode.EnumerateArray())
                        list.Add(new("decode", 0, 0, Int(d, "batch", where), Int(d, "context", where), Number(d, "ms_per_layer_eager", where),
                            d.TryGetProperty("ms_per_layer_graph", out var g) && g.ValueKind == JsonValueKind.Number ? g.GetDouble() : null));
                if (s.TryGetProperty("mixed", out var mixed))
                    foreach (var m in mixed.EnumerateArray())
                        list.Add(new("mixed", 1, Int(m, "prefill_tokens", where), Int(m, "decodes", where), Int(m, "context", where), Number(m, "ms_per_layer", where), null));
                entries.Add(new CalibrationEntry(Text(s, "model"), Int(s, "tp", where), list));
            }
            return new File(Text(root, "gpu"), Text(root, "torch"),
                refs.ValueKind == JsonValueKind.Object ? Number(refs, "gemm_tflops", "references") : 0,
                refs.ValueKind == JsonValueKind.Object ? Number(refs, "copy_gbps", "references") : 0, entries);
        }
    }
}
