using System.Globalization;

namespace OServe.Engine.Benchmarking;

/// <summary>Prints vLLM's "Serving Benchmark Result" table, then the first failure messages and the run's notes.</summary>
public static class BenchReport
{
    private const int Width = 50;

    public static void Write(TextWriter w, BenchResult r)
    {
        w.WriteLine(Center(" Serving Benchmark Result ", '='));
        Row(w, "Successful requests:", r.Completed);
        Row(w, "Failed requests:", r.Failed);
        if (r.MaxConcurrency is { } mc) Row(w, "Maximum request concurrency:", mc);
        Row(w, "Benchmark duration (s):", r.Duration);
        Row(w, "Total input tokens:", r.TotalInputTokens);
        Row(w, "Total generated tokens:", r.TotalOutputTokens);
        Row(w, "Request throughput (req/s):", r.RequestThroughput);
        if (r.RequestGoodput is { } goodput) Row(w, "Request goodput (req/s):", goodput);
        Row(w, "Output token throughput (tok/s):", r.OutputThroughput);
        Row(w, "Peak concurrent requests:", r.MaxConcurrentRequests);
        Row(w, "Total Token throughput (tok/s):", r.TotalTokenThroughput);
        foreach (var metric in r.PercentileMetrics)
        {
            var (header, label) = Titles(metric);
            var s = r.Summaries[metric];
            w.WriteLine(Center(header, '-'));
            Row(w, $"Mean {label} (ms):", s.MeanMs);
            Row(w, $"Median {label} (ms):", s.MedianMs);
            foreach (var (p, value) in s.Percentiles) Row(w, $"P{BenchResultJson.PercentileWord(p)} {label} (ms):", value);
        }
        w.WriteLine(new string('=', Width));

        if (r.Failed > 0)
        {
            w.WriteLine($"Failures ({r.Failed}), most frequent first:");
            foreach (var (error, count) in r.TopErrors()) w.WriteLine($"  {count} x {error}");
        }
        foreach (var note in r.Notes) w.WriteLine($"note: {note}");
    }

    private static (string Header, string Label) Titles(BenchMetric metric) => metric switch
    {
        BenchMetric.Ttft => ("Time to First Token", "TTFT"),
        BenchMetric.Tpot => ("Time per Output Token (excl. 1st token)", "TPOT"),
        BenchMetric.Itl => ("Inter-token Latency", "ITL"),
        _ => ("End-to-end Latency", "E2EL"),
    };

    private static string Center(string text, char fill)
    {
        var left = Math.Max(0, (Width - text.Length) / 2);
        return new string(fill, left) + text + new string(fill, Math.Max(0, Width - left - text.Length));
    }

    private static void Row(TextWriter w, string label, long value) =>
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label,-40} {value,-10}"));

    private static void Row(TextWriter w, string label, double value) =>
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label,-40} {value,-10:F2}"));
}
