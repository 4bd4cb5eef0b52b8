using OServe.Planner.Workload;

namespace OServe.Engine.Benchmarking;

/// <summary>Where the request lengths (and, for traces, the arrival times) come from.</summary>
public enum BenchDataset { Random, Trace }

/// <summary>Which tokenizer builds the prompts: the server's /tokenize when present (Auto), only it (Server), or GPT-2 locally.</summary>
public enum BenchTokenizerChoice { Auto, Server, Gpt2 }

/// <summary>The latency figures vLLM reports; names match its --percentile-metrics and result fields.</summary>
public enum BenchMetric { Ttft, Tpot, Itl, E2el }

/// <summary>One goodput SLO: a request is good only if its metric is at most <see cref="Milliseconds"/>.</summary>
public readonly record struct GoodputSlo(BenchMetric Metric, double Milliseconds);

/// <summary>
/// Everything one benchmark run needs; the CLI builds it from flags, tests build it directly.
/// Defaults follow <c>vllm bench serve</c> unless a comment says otherwise.
/// </summary>
public sealed record BenchOptions
{
    public required Uri BaseUrl { get; init; }
    public required string Model { get; init; }

    /// <summary>Path under the base URL; one ending in chat/completions sends chat messages.</summary>
    public string Endpoint { get; init; } = "/v1/completions";

    public BenchDataset Dataset { get; init; } = BenchDataset.Random;

    /// <summary>Requests to send; null: 1000 for random, the whole trace for a trace.</summary>
    public int? NumPrompts { get; init; }

    public int RandomInputLen { get; init; } = 1024;
    public int RandomOutputLen { get; init; } = 128;

    /// <summary>Lengths are drawn uniformly from [len·(1−r), len·(1+r)].</summary>
    public double RandomRangeRatio { get; init; }

    public string? DatasetPath { get; init; }

    /// <summary>Null: detect from the file's extension and header, as the planner does.</summary>
    public TraceFormat? TraceFormat { get; init; }

    /// <summary>Trace arrivals are multiplied by this: 0.5 replays twice as fast.</summary>
    public double TimeScale { get; init; } = 1.0;

    /// <summary>
    /// Requests per second of a Poisson/gamma process; +inf sends all at once. Null: +inf for the random
    /// dataset, the trace's own timestamps for a trace (a rate given with a trace ignores its timestamps).
    /// </summary>
    public double? RequestRate { get; init; }

    /// <summary>Gamma shape of the inter-arrival times: 1 is Poisson, below 1 burstier, above 1 smoother.</summary>
    public double Burstiness { get; init; } = 1.0;

    public int? MaxConcurrency { get; init; }
    public int Seed { get; init; }
    public BenchTokenizerChoice Tokenizer { get; init; } = BenchTokenizerChoice.Auto;
    public IReadOnlyList<GoodputSlo> Goodput { get; init; } = [];

    /// <summary>The metrics whose percentiles are printed; all four always go into the JSON's mean/median/std.</summary>
    public IReadOnlyList<BenchMetric> PercentileMetrics { get; init; } = [BenchMetric.Ttft, BenchMetric.Tpot, BenchMetric.Itl];
    public IReadOnlyList<double> MetricPercentiles { get; init; } = [99];

    /// <summary>vLLM's client gives a request six hours; a stalled server should not hang a run forever either.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromHours(6);

    /// <summary>Sends the first request alone before the run (not counted), as vLLM does, to fail fast on a wrong URL or model.</summary>
    public bool SkipInitialTest { get; init; }

    /// <summary>Keeps each request's generated text in the result (vLLM's generated_texts).</summary>
    public bool KeepGeneratedTexts { get; init; } = true;

    public bool IsChat => Endpoint.TrimEnd('/').EndsWith("chat/completions", StringComparison.Ordinal);

    public Uri EndpointUri => new(BaseUrl.ToString().TrimEnd('/') + "/" + Endpoint.TrimStart('/'));

    /// <summary>Throws <see cref="BenchInputException"/> naming the option of every unusable value.</summary>
    public void Validate()
    {
        var problems = new List<string>();
        void Check(bool ok, string problem) { if (!ok) problems.Add(problem); }
        Check(BaseUrl.IsAbsoluteUri && (BaseUrl.Scheme == Uri.UriSchemeHttp || BaseUrl.Scheme == Uri.UriSchemeHttps),
            $"--base-url: expected an http:// or https:// URL, got '{BaseUrl}'");
        Check(!string.IsNullOrWhiteSpace(Model), "--model: must not be empty");
        Check(Endpoint.StartsWith('/'), $"--endpoint: expected a path starting with '/', got '{Endpoint}'");
        Check(NumPrompts is null or > 0, $"--num-prompts: must be at least 1, got {NumPrompts}");
        Check(RandomInputLen >= 1, $"--random-input-len: must be at least 1, got {RandomInputLen}");
        Check(RandomOutputLen >= 1, $"--random-output-len: must be at least 1, got {RandomOutputLen}");
        Check(RandomRangeRatio is >= 0 and < 1, $"--random-range-ratio: must be in [0, 1), got {RandomRangeRatio}");
        Check(Dataset != BenchDataset.Trace || !string.IsNullOrWhiteSpace(DatasetPath),
            "--dataset-path: required with --dataset-name trace");
        Check(double.IsFinite(TimeScale) && TimeScale > 0, $"--time-scale: must be a positive number, got {TimeScale}");
        Check(RequestRate is null || RequestRate > 0 && !double.IsNaN(RequestRate.Value),
            $"--request-rate: must be a positive number or inf, got {RequestRate}");
        Check(double.IsFinite(Burstiness) && Burstiness > 0, $"--burstiness: must be a positive number, got {Burstiness}");
        Check(MaxConcurrency is null or > 0, $"--max-concurrency: must be at least 1, got {MaxConcurrency}");
        Check(RequestTimeout > TimeSpan.Zero, $"--request-timeout: must be positive, got {RequestTimeout.TotalSeconds} s");
        foreach (var p in MetricPercentiles)
            Check(p is > 0 and <= 100, $"--metric-percentiles: each must be in (0, 100], got {p}");
        foreach (var slo in Goodput)
            Check(slo.Metric != BenchMetric.Itl && double.IsFinite(slo.Milliseconds) && slo.Milliseconds >= 0,
                $"--goodput: {slo.Metric.ToString().ToLowerInvariant()}:{slo.Milliseconds} is not a usable SLO (ttft, tpot or e2el, milliseconds >= 0)");
        if (problems.Count > 0) throw new BenchInputException(problems);
    }
}

/// <summary>Input that cannot be benchmarked (bad option, bad trace row): one line per problem; exit code 2.</summary>
public sealed class BenchInputException(IReadOnlyList<string> problems) : Exception(string.Join(Environment.NewLine, problems))
{
    public BenchInputException(string problem) : this([problem]) { }
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>The server could not be reached or refused the initial test request; exit code 1.</summary>
public sealed class BenchServerException(string message) : Exception(message);
