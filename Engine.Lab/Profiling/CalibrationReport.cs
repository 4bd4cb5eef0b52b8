using System.Globalization;
using System.Text.Json;

namespace OServe.Engine.Profiling;

/// <summary>Prints and saves a <see cref="CalibrationComparison"/>: a row per shape and the median ratio per kind.</summary>
public static class CalibrationReport
{
    public static void Print(TextWriter io, CalibrationShapes.File file, IReadOnlyList<CalibrationComparisonRow> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        io.WriteLine();
        io.WriteLine($"engine vs {file.Gpu} calibration (torch {file.Torch}), milliseconds per layer of one TP rank; ratio = engine / calibration (eager)");
        io.WriteLine($"{"model",-12} {"tp",3} {"shape",-24} {"engine",9} {"calib",9} {"graph",9} {"ratio",7}");
        foreach (var r in rows.Where(r => r.MsPerLayer is not null))
            io.WriteLine(string.Create(inv,
                $"{r.Model,-12} {r.Tp,3} {r.Shape,-24} {r.MsPerLayer,9:F3} {r.Shape.MsPerLayer,9:F3} {(r.Shape.MsPerLayerGraph is { } g ? g.ToString("F3", inv) : "-"),9} {r.Ratio,7:F2}"));
        foreach (var group in rows.Where(r => r.Skipped is not null).GroupBy(r => (r.Model, r.Tp, r.Skipped)))
            io.WriteLine($"{group.Key.Model,-12} {group.Key.Tp,3} skipped {group.Count()} shape(s): {group.Key.Skipped}");
        io.WriteLine();
        foreach (var (kind, median, count) in Summary(rows))
            io.WriteLine(string.Create(inv, $"{kind}: median ratio {median:F2} over {count} shapes"));
    }

    /// <summary>Median engine/calibration ratio per kind (prefill, decode, mixed) over the timed shapes.</summary>
    public static IEnumerable<(string Kind, double Median, int Count)> Summary(IReadOnlyList<CalibrationComparisonRow> rows) =>
        rows.Where(r => r.Ratio is not null).GroupBy(r => r.Shape.Kind).Select(g =>
        {
            var sorted = g.Select(r => r.Ratio!.Value).Order().ToArray();
            return (g.Key, sorted[sorted.Length / 2], sorted.Length);
        });

    public static void WriteJson(string path, CalibrationShapes.File file, IReadOnlyList<CalibrationComparisonRow> rows, string device, string dtype)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("calibration_gpu", file.Gpu);
        json.WriteString("device", device);
        json.WriteString("dtype", dtype);
        json.WriteStartObject("median_ratio");
        foreach (var (kind, median, count) in Summary(rows))
        {
            json.WriteStartObject(kind);
            json.WriteNumber("ratio", median);
            json.WriteNumber("shapes", count);
            json.WriteEndObject();
        }
        json.WriteEndObject();
        json.WriteStartArray("rows");
        foreach (var r in rows)
        {
            json.WriteStartObject();
            json.WriteString("model", r.Model);
            json.WriteNumber("tp", r.Tp);
            json.WriteString("kind", r.Shape.Kind);
            json.WriteString("shape", r.Shape.ToString());
            json.WriteNumber("calibration_ms_per_layer", r.Shape.MsPerLayer);
            if (r.Shape.MsPerLayerGraph is { } g) json.WriteNumber("calibration_graph_ms_per_layer", g);
            if (r.MsPerLayer is { } ms) json.WriteNumber("engine_ms_per_layer", ms);
            if (r.Ratio is { } ratio) json.WriteNumber("ratio", ratio);
            if (r.Skipped is not null) json.WriteString("skipped", r.Skipped);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
