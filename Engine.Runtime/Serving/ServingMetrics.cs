using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>
/// vLLM's serving metrics under an "oserve:" prefix, labelled model_name as vLLM does. Latencies are
/// measured here, at the HTTP edge, from the request's arrival; queue depths, KV usage and token totals
/// are read from <see cref="IInferenceEngine.Snapshot"/> at each scrape, so the engine stays their one
/// source. Each server owns its figures, so two servers in one process (tests) never mix them.
/// </summary>
public sealed class ServingMetrics(IInferenceEngine engine, string modelName)
{
    // vLLM's bucket boundaries, so dashboards built for vLLM read ours unchanged.
    private static readonly double[] TtftBuckets =
        [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    private static readonly double[] ItlBuckets =
        [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] E2eBuckets =
        [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    private static readonly FinishReason[] FinishReasons = [FinishReason.Stop, FinishReason.Length, FinishReason.Abort];

    private readonly PrometheusHistogram _timeToFirstToken = new("oserve:time_to_first_token_seconds",
        "Time from arrival to the first generated token.", TtftBuckets);
    private readonly PrometheusHistogram _interTokenLatency = new("oserve:inter_token_latency_seconds",
        "Time between consecutive generated tokens of a request.", ItlBuckets);
    private readonly PrometheusHistogram _e2eLatency = new("oserve:e2e_request_latency_seconds",
        "Time from arrival to the last token of a finished request.", E2eBuckets);
    private readonly long[] _numFinished = new long[FinishReasons.Length];

    public void ObserveFirstToken(TimeSpan sinceArrival) => _timeToFirstToken.Observe(sinceArrival.TotalSeconds);

    public void ObserveInterToken(TimeSpan sincePreviousToken) => _interTokenLatency.Observe(sincePreviousToken.TotalSeconds);

    public void ObserveFinished(TimeSpan sinceArrival, FinishReason reason)
    {
        _e2eLatency.Observe(sinceArrival.TotalSeconds);
        Interlocked.Increment(ref _numFinished[Array.IndexOf(FinishReasons, reason)]);
    }

    /// <summary>A request that ended without finishing (client gone, time budget, failure): counted, not timed.</summary>
    public void ObserveAborted() => Interlocked.Increment(ref _numFinished[Array.IndexOf(FinishReasons, FinishReason.Abort)]);

    /// <summary>The whole exposition, as GET /metrics answers it.</summary>
    public string Render()
    {
        var snapshot = engine.Snapshot();
        (string, string)[] model = [("model_name", modelName)];
        var text = new PrometheusText();
        void Single(string name, string type, string help, double value)
        {
            text.Family(name, type, help);
            text.Sample(name, model, value);
        }

        Single("oserve:num_requests_running", "gauge", "Requests in the running batch.", snapshot.NumRequestsRunning);
        Single("oserve:num_requests_waiting", "gauge", "Requests admitted and waiting to be scheduled.", snapshot.NumRequestsWaiting);
        Single("oserve:kv_cache_usage_perc", "gauge", "Fraction of KV cache blocks in use (1 = full).", snapshot.KvCacheUsage);
        Single("oserve:prompt_tokens_total", "counter", "Prompt tokens processed.", snapshot.PromptTokensTotal);
        Single("oserve:generation_tokens_total", "counter", "Tokens generated.", snapshot.GenerationTokensTotal);
        text.Family("oserve:request_success_total", "counter", "Requests that finished, by finish reason.");
        for (var i = 0; i < FinishReasons.Length; i++)
            text.Sample("oserve:request_success_total", [.. model, ("finished_reason", OpenAIFinishReason.From(FinishReasons[i]))],
                Interlocked.Read(ref _numFinished[i]));
        _timeToFirstToken.Write(text, model);
        _interTokenLatency.Write(text, model);
        _e2eLatency.Write(text, model);
        (engine as IMetricsContributor)?.WriteMetrics(text, model);
        return text.ToString();
    }
}
