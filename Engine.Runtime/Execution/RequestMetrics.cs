namespace OServe.Engine.Execution;

/// <summary>
/// Latency figures of one finished request, engine-clock seconds, as vLLM's benchmark defines
/// them. Times the request never reached (no token before an abort) are NaN.
/// </summary>
public sealed record RequestMetrics(
    string RequestId,
    int NumPromptTokens,
    int NumOutputTokens,
    FinishReason FinishReason,
    double ArrivalTime,
    double FirstScheduledTime,
    double FirstTokenTime,
    double LastTokenTime,
    double FinishedTime,
    int NumPreemptions,
    IReadOnlyList<double> InterTokenLatencies)
{
    public double QueueTime => FirstScheduledTime - ArrivalTime;
    public double TimeToFirstToken => FirstTokenTime - ArrivalTime;
    public double EndToEndLatency => FinishedTime - ArrivalTime;

    /// <summary>TPOT: mean gap between output tokens after the first; 0 for a single token.</summary>
    public double TimePerOutputToken => NumOutputTokens > 1 ? (LastTokenTime - FirstTokenTime) / (NumOutputTokens - 1) : 0;
}

/// <summary>Implemented by engines that report per-request latencies (for Prometheus histograms).</summary>
public interface IRequestMetricsSource
{
    /// <summary>Raised on the engine loop thread once per request, after its last event; handlers must be quick.</summary>
    event Action<RequestMetrics>? RequestFinished;
}
