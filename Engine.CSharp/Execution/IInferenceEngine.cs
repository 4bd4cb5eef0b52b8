namespace OServe.Engine.Execution;

/// <summary>
/// The narrow seam between the HTTP layer (Serving) and whatever generates tokens: one replica's
/// engine core, or the dispatcher over many replicas. Serving never sees schedulers or tensors.
/// </summary>
public interface IInferenceEngine
{
    /// <summary>Name served under /v1/models and checked against a request's "model" field.</summary>
    string ModelName { get; }

    /// <summary>Longest prompt + completion one request may use, in tokens.</summary>
    int MaxModelLength { get; }

    /// <summary>
    /// Number of token ids the model knows, so the server can refuse an out-of-range id in a prompt or
    /// stop_token_ids with a 400 instead of failing inside the model. Null (the default) skips that check.
    /// </summary>
    int? VocabSize => null;

    /// <summary>Tokenizes text with the served model's tokenizer.</summary>
    IReadOnlyList<int> Encode(string text, bool addBos);

    /// <summary>
    /// Admits a request. Throws <see cref="AdmissionRejectedException"/> when the admission
    /// queue is full (the server answers 429/503 with Retry-After). The returned stream yields
    /// one event per generated token, then a final event with a finish reason; cancelling the
    /// token aborts the request and frees its KV blocks.
    /// </summary>
    /// <remarks>
    /// The final event is the last token's own event (TokenId >= 0, FinishReason set) except for
    /// an abort, whose final event has TokenId -1. Admission happens at the call, before any
    /// enumeration: a bad request throws <see cref="ArgumentException"/> there with ParamName set
    /// to the OpenAI field ("prompt", "max_tokens", "temperature", "top_p", "top_k", "stop").
    /// </remarks>
    IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken);

    /// <summary>Point-in-time figures for /metrics and the live view.</summary>
    EngineSnapshot Snapshot();
}

/// <summary>Sampling controls with OpenAI/vLLM meaning.</summary>
public sealed record SamplingParams
{
    public int MaxTokens { get; init; } = 16;
    public float Temperature { get; init; } = 1.0f;
    public float TopP { get; init; } = 1.0f;
    public int TopK { get; init; } = -1;
    public ulong? Seed { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    public bool IgnoreEos { get; init; }
    public bool IsGreedy => Temperature <= 0f;
}

public sealed record GenerationRequest(string RequestId, IReadOnlyList<int> PromptTokens, SamplingParams Sampling)
{
    /// <summary>When the server received it (engine clock, seconds); used for latency metrics.</summary>
    public double ArrivalTime { get; init; }
}

public enum FinishReason { None, Length, Stop, Abort }

/// <summary>One step of a request's output. <see cref="TextDelta"/> is the newly decodable text.</summary>
public sealed record GenerationEvent(
    string RequestId,
    int TokenId,
    string TextDelta,
    FinishReason FinishReason,
    int NumPromptTokens,
    int NumOutputTokens)
{
    public bool IsFinished => FinishReason != FinishReason.None;
}

public sealed record EngineSnapshot(
    int NumRequestsRunning,
    int NumRequestsWaiting,
    double KvCacheUsage,
    long PromptTokensTotal,
    long GenerationTokensTotal);

/// <summary>The admission queue is full; the caller should retry after <see cref="RetryAfter"/>.</summary>
public sealed class AdmissionRejectedException(string message, TimeSpan retryAfter) : Exception(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}
