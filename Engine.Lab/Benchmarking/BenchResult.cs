namespace OServe.Engine.Benchmarking;

/// <summary>
/// One run's figures. Throughputs are per second of <see cref="Duration"/> (first send to last
/// completion); token totals count successful requests only, as vLLM does.
/// </summary>
public sealed record BenchResult
{
    public required DateTime Date { get; init; }
    /// <summary>vLLM's backend name for the endpoint used: "openai" (completions) or "openai-chat".</summary>
    public required string Backend { get; init; }
    public required string BaseUrl { get; init; }
    public required string Endpoint { get; init; }
    public required string ModelId { get; init; }
    public required string TokenizerId { get; init; }
    public required string Workload { get; init; }
    public required int NumPrompts { get; init; }
    /// <summary>+inf when all requests were sent at once; NaN when the trace's own timestamps set the pace.</summary>
    public required double RequestRate { get; init; }
    public required double Burstiness { get; init; }
    public required int? MaxConcurrency { get; init; }
    public required double Duration { get; init; }
    public required int Completed { get; init; }
    public required int Failed { get; init; }
    public required long TotalInputTokens { get; init; }
    public required long TotalOutputTokens { get; init; }
    public required double RequestThroughput { get; init; }
    /// <summary>Null without --goodput.</summary>
    public required double? RequestGoodput { get; init; }
    public required double OutputThroughput { get; init; }
    public required double TotalTokenThroughput { get; init; }
    public required int MaxConcurrentRequests { get; init; }
    /// <summary>Prompts whose re-tokenized length differs from the asked length (0 when every prompt is exact).</summary>
    public required int NumPromptLenMismatches { get; init; }
    /// <summary>Successful requests whose output length came from the server's usage chunk, not from counting chunks.</summary>
    public required int NumOutputLensFromUsage { get; init; }
    public required IReadOnlyList<GoodputSlo> Goodput { get; init; }
    public required IReadOnlyList<BenchMetric> PercentileMetrics { get; init; }
    public required IReadOnlyList<double> MetricPercentiles { get; init; }
    public required IReadOnlyDictionary<BenchMetric, MetricSummary> Summaries { get; init; }
    /// <summary>Every request in send order, failed ones included (their latencies are 0).</summary>
    public required IReadOnlyList<RequestOutcome> Outcomes { get; init; }
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>The first few distinct failure messages, most frequent first, with their counts.</summary>
    public IReadOnlyList<(string Error, int Count)> TopErrors(int max = 5) =>
        Outcomes.Where(o => !o.Success).GroupBy(o => o.Error).OrderByDescending(g => g.Count())
            .Take(max).Select(g => (g.Key, g.Count())).ToList();
}
