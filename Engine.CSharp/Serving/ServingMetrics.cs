using OServe.Engine.Execution;
using Prometheus;

namespace OServe.Engine.Serving;

/// <summary>
/// vLLM's serving metrics under an "oserve:" prefix, labelled model_name as vLLM does. Latencies are
/// measured here, at the HTTP edge, from the request's arrival; queue depths, KV usage and token totals
/// are read from <see cref="IInferenceEngine.Snapshot"/> at each scrape, so the engine stays their one
/// source. Each server owns its registry, so two servers in one process (tests) never mix figures.
/// </summary>
public sealed class ServingMetrics
{
    // vLLM's bucket boundaries, so dashboards built for vLLM read ours unchanged.
    private static readonly double[] TtftBuckets =
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    private static readonly double[] ItlBuckets =
        [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] E2eBuckets =
        [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    private readonly Histogram.Child _timeToFirstToken;
    private readonly Histogram.Child _interTokenLatency;
    private readonly Histogram.Child _e2eLatency;
    private readonly Counter _requestSuccess;
    private readonly string _modelName;

    public ServingMetrics(IInferenceEngine engine, string modelName)
    {
        _modelName = modelName;
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        string[] model = ["model_name"];

        _timeToFirstToken = factory.CreateHistogram("oserve:time_to_first_token_seconds", "Time from arrival to the first generated token.",
            new HistogramConfiguration { Buckets = TtftBuckets, LabelNames = model }).WithLabels(modelName);
        _interTokenLatency = factory.CreateHistogram("oserve:inter_token_latency_seconds", "Time between consecutive generated tokens of a request.",
            new HistogramConfiguration { Buckets = ItlBuckets, LabelNames = model }).WithLabels(modelName);
        _e2eLatency = factory.CreateHistogram("oserve:e2e_request_latency_seconds", "Time from arrival to the last token of a finished request.",
            new HistogramConfiguration { Buckets = E2eBuckets, LabelNames = model }).WithLabels(modelName);
        _requestSuccess = factory.CreateCounter("oserve:request_success_total", "Requests that finished, by finish reason.",
            new CounterConfiguration { LabelNames = ["model_name", "finished_reason"] });

        var running = factory.CreateGauge("oserve:num_requests_running", "Requests in the running batch.", model).WithLabels(modelName);
        var waiting = factory.CreateGauge("oserve:num_requests_waiting", "Requests admitted and waiting to be scheduled.", model).WithLabels(modelName);
        var kvUsage = factory.CreateGauge("oserve:kv_cache_usage_perc", "Fraction of KV cache blocks in use (1 = full).", model).WithLabels(modelName);
        var promptTokens = factory.CreateCounter("oserve:prompt_tokens_total", "Prompt tokens processed.", model).WithLabels(modelName);
        var generationTokens = factory.CreateCounter("oserve:generation_tokens_total", "Tokens generated.", model).WithLabels(modelName);

        Registry.AddBeforeCollectCallback(() =>
        {
            var snapshot = engine.Snapshot();
            running.Set(snapshot.NumRequestsRunning);
            waiting.Set(snapshot.NumRequestsWaiting);
            kvUsage.Set(snapshot.KvCacheUsage);
            promptTokens.IncTo(snapshot.PromptTokensTotal);
            generationTokens.IncTo(snapshot.GenerationTokensTotal);
        });
    }

    public CollectorRegistry Registry { get; }

    public void ObserveFirstToken(TimeSpan sinceArrival) => _timeToFirstToken.Observe(sinceArrival.TotalSeconds);

    public void ObserveInterToken(TimeSpan sincePreviousToken) => _interTokenLatency.Observe(sincePreviousToken.TotalSeconds);

    public void ObserveFinished(TimeSpan sinceArrival, FinishReason reason)
    {
        _e2eLatency.Observe(sinceArrival.TotalSeconds);
        _requestSuccess.WithLabels(_modelName, OpenAIFinishReason.From(reason)).Inc();
    }
}
