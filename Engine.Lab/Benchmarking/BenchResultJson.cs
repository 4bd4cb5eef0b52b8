using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace OServe.Engine.Benchmarking;

/// <summary>
/// Writes a result with the field names of vLLM's <c>benchmark_serving.py --save-result</c>, so
/// tooling that reads those files reads ours: latencies in the per-request lists are seconds,
/// the summary fields milliseconds (mean_ttft_ms, p99_ttft_ms, ...), "request_rate" is "inf" for all-at-once.
/// </summary>
public static class BenchResultJson
{
    private static readonly JsonWriterOptions Options = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Write(Stream stream, BenchResult r)
    {
        using var json = new Utf8JsonWriter(stream, Options);
        json.WriteStartObject();
        json.WriteString("date", r.Date.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture));
        json.WriteString("backend", r.Backend);
        json.WriteString("endpoint_type", r.Backend);
        json.WriteString("base_url", r.BaseUrl);
        json.WriteString("endpoint", r.Endpoint);
        json.WriteString("label", (string?)null);
        json.WriteString("model_id", r.ModelId);
        json.WriteString("tokenizer_id", r.TokenizerId);
        json.WriteString("workload", r.Workload);
        json.WriteNumber("num_prompts", r.NumPrompts);
        if (double.IsPositiveInfinity(r.RequestRate)) json.WriteString("request_rate", "inf");
        else if (double.IsNaN(r.RequestRate)) json.WriteString("request_rate", "trace");
        else json.WriteNumber("request_rate", r.RequestRate);
        json.WriteNumber("burstiness", r.Burstiness);
        if (r.MaxConcurrency is { } mc) json.WriteNumber("max_concurrency", mc);
        else json.WriteNull("max_concurrency");
        json.WriteNumber("duration", r.Duration);
        json.WriteNumber("completed", r.Completed);
        json.WriteNumber("failed", r.Failed);
        json.WriteNumber("total_input_tokens", r.TotalInputTokens);
        json.WriteNumber("total_output_tokens", r.TotalOutputTokens);
        json.WriteNumber("request_throughput", r.RequestThroughput);
        if (r.RequestGoodput is { } goodput) json.WriteNumber("request_goodput", goodput);
        else json.WriteNull("request_goodput");
        json.WriteNumber("output_throughput", r.OutputThroughput);
        json.WriteNumber("total_token_throughput", r.TotalTokenThroughput);
        json.WriteNumber("max_concurrent_requests", r.MaxConcurrentRequests);
        json.WriteNumber("num_prompt_len_mismatches", r.NumPromptLenMismatches);

        WriteArray(json, "input_lens", r.Outcomes, (w, o) => w.WriteNumberValue(o.PromptLen));
        WriteArray(json, "output_lens", r.Outcomes, (w, o) => w.WriteNumberValue(o.Success ? o.OutputTokens : 0));
        WriteArray(json, "ttfts", r.Outcomes, (w, o) => w.WriteNumberValue(o.Ttft));
        WriteArray(json, "itls", r.Outcomes, (w, o) =>
        {
            w.WriteStartArray();
            foreach (var gap in o.Itl) w.WriteNumberValue(gap);
            w.WriteEndArray();
        });
        WriteArray(json, "generated_texts", r.Outcomes, (w, o) => w.WriteStringValue(o.GeneratedText));
        WriteArray(json, "errors", r.Outcomes, (w, o) => w.WriteStringValue(o.Error));

        foreach (var (metric, s) in r.Summaries)
        {
            var name = Name(metric);
            json.WriteNumber($"mean_{name}_ms", s.MeanMs);
            json.WriteNumber($"median_{name}_ms", s.MedianMs);
            json.WriteNumber($"std_{name}_ms", s.StdMs);
            foreach (var (p, value) in s.Percentiles) json.WriteNumber($"p{PercentileWord(p)}_{name}_ms", value);
        }
        json.WriteEndObject();
    }

    public static string Name(BenchMetric metric) => metric.ToString().ToLowerInvariant();

    /// <summary>vLLM writes p99 for 99 and p99.9 for 99.9.</summary>
    public static string PercentileWord(double p) =>
        p == Math.Floor(p) ? ((int)p).ToString(CultureInfo.InvariantCulture) : p.ToString(CultureInfo.InvariantCulture);

    /// <summary>vLLM's default name: {backend}-{rate}qps[-concurrency{N}]-{model}-{date}.json.</summary>
    public static string DefaultFileName(BenchResult r)
    {
        var rate = double.IsPositiveInfinity(r.RequestRate) ? "inf" : double.IsNaN(r.RequestRate) ? "trace"
            : r.RequestRate.ToString(CultureInfo.InvariantCulture);
        var concurrency = r.MaxConcurrency is { } mc ? $"-concurrency{mc}" : "";
        var model = r.ModelId.Split('/')[^1];
        return $"{r.Backend}-{rate}qps{concurrency}-{model}-{r.Date.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}.json";
    }

    private static void WriteArray(Utf8JsonWriter json, string name, IReadOnlyList<RequestOutcome> outcomes, Action<Utf8JsonWriter, RequestOutcome> item)
    {
        json.WriteStartArray(name);
        foreach (var o in outcomes) item(json, o);
        json.WriteEndArray();
    }
}
