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

    /// <summary>
    /// Upper bound on the UTF-8 bytes one token of the served tokenizer stands for, so the server can
    /// refuse a prompt too long for the context from its byte length, before tokenizing it. Null: unknown.
    /// </summary>
    int? MaxTokenBytes => null;

    /// <summary>Tokenizes text with the served model's tokenizer.</summary>
    IReadOnlyList<int> Encode(string text, bool addBos);

    /// <summary>As <see cref="Encode(string, bool)"/>; stops with <see cref="OperationCanceledException"/> once the token fires (the client left).</summary>
    IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Encode(text, addBos);
    }

    /// <summary>The bytes of text one token stands for (logprobs name tokens by them); empty when unknown.</summary>
    byte[] TokenBytes(int tokenId) => [];

    /// <summary>Text of token ids (special tokens dropped), e.g. to echo a prompt given as ids; empty when unknown.</summary>
    string Decode(IReadOnlyList<int> tokenIds) => "";

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

    /// <summary>
    /// Draws of <see cref="Seed"/>'s stream already taken before this request (one per token sampled
    /// with temperature): a request resumed on another replica from its prompt and the tokens it had
    /// streamed continues the stream where it stopped instead of restarting it. 0 for a new request.
    /// </summary>
    public int SeedStreamOffset { get; init; }

    public IReadOnlyList<string> Stop { get; init; } = [];
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    public bool IgnoreEos { get; init; }

    /// <summary>
    /// Report each generated token's log-probability and those of the <c>Logprobs</c> most likely
    /// tokens at its position (0: the chosen token's alone); null reports nothing. Log-probabilities
    /// are of the model's raw distribution, before temperature and top-k/top-p (vLLM's default).
    /// </summary>
    public int? Logprobs { get; init; }

    /// <summary>As <see cref="Logprobs"/> for every prompt token after the first (echo with logprobs); null: none.</summary>
    public int? PromptLogprobs { get; init; }

    public bool IsGreedy => Temperature <= 0f;
}

public sealed record GenerationRequest(string RequestId, IReadOnlyList<int> PromptTokens, SamplingParams Sampling)
{
    /// <summary>When the server received it (engine clock, seconds); used for latency metrics.</summary>
    public double ArrivalTime { get; init; }

    /// <summary>
    /// A request resumed on this replica after its first one was lost: the last this-many prompt
    /// tokens are output it already streamed. They are prefilled as prompt, and its output text
    /// goes on from them: text they decode to that was held back for a stop string (and never
    /// sent) is sent, and a stop string that began in them is found. 0 for a new request.
    /// </summary>
    public int ResumedOutputTokens { get; init; }
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

    /// <summary>The token's log-probability and the top alternatives, when the request asked for logprobs.</summary>
    public TokenLogprob? Logprob { get; init; }

    /// <summary>
    /// On the first token's event of a request that asked for prompt logprobs: one entry per prompt
    /// token, the first null (nothing predicts it).
    /// </summary>
    public IReadOnlyList<TokenLogprob?>? PromptLogprobs { get; init; }
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
