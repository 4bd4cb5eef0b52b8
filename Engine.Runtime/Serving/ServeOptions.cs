using System.Net;

namespace OServe.Engine.Serving;

/// <summary>What `oserve serve` exposes and how it admits work; vLLM's flag names where they mean the same.</summary>
public sealed record ServeOptions
{
    /// <summary>Interface to bind. Loopback by default: exposing the server is an explicit choice.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (read it back with <see cref="ServerHost.BoundAddress"/>).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>When set, every route but /health requires "Authorization: Bearer &lt;key&gt;" (/metrics too, unless <see cref="IsMetricsOpen"/>).</summary>
    public string? ApiKey { get; init; }

    /// <summary>Serve GET /metrics without the API key, for scrapers that carry none (--metrics-without-key).</summary>
    public bool IsMetricsOpen { get; init; }

    /// <summary>
    /// Longest prompt in UTF-8 bytes (completion prompt, rendered chat, /tokenize). Null: the
    /// model's context length times the most bytes one token can stand for, so a longer prompt
    /// could never fit and is refused before any tokenizing work.
    /// </summary>
    public long? MaxPromptBytes { get; init; }

    /// <summary>
    /// Wall time one request may take, admission to last token; past it the engine aborts the
    /// request (408 when nothing was sent yet, an error event in a stream). Null: no limit.
    /// </summary>
    public TimeSpan? RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Names a request's "model" may use (vLLM's --served-model-name). Empty means the engine's own
    /// <see cref="Execution.IInferenceEngine.ModelName"/>. Responses echo the name the request used.
    /// </summary>
    public IReadOnlyList<string> ServedModelNames { get; init; } = [];

    /// <summary>
    /// Requests the server lets into the engine at once; further ones get <see cref="RejectStatusCode"/>
    /// at once instead of queueing without bound. Null leaves admission to the engine alone.
    /// </summary>
    public int? MaxConcurrentRequests { get; init; }

    /// <summary>Retry-After for rejections made by the server itself (the engine supplies its own).</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>429 (Too Many Requests, OpenAI's choice) or 503 (Service Unavailable) when admission is full.</summary>
    public int RejectStatusCode { get; init; } = StatusCodes.Status429TooManyRequests;

    /// <summary>max_tokens for /v1/completions when the request gives none (OpenAI's legacy default).</summary>
    public int DefaultCompletionMaxTokens { get; init; } = 16;

    /// <summary>Checks the options; the message names the option at fault.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host))
            throw new ArgumentException("host: must not be empty");
        if (!string.Equals(Host, "localhost", StringComparison.OrdinalIgnoreCase) && !IPAddress.TryParse(Host, out _))
            throw new ArgumentException($"host: must be an IP address or 'localhost', got '{Host}'");
        if (Port is < 0 or > 65535)
            throw new ArgumentException($"port: must be in 0..65535, got {Port}");
        if (ApiKey is { Length: 0 })
            throw new ArgumentException("api-key: must not be empty when given");
        foreach (var name in ServedModelNames)
            if (string.IsNullOrWhiteSpace(name))
                throw new ArgumentException("served-model-name: names must not be empty");
        if (MaxConcurrentRequests is < 1)
            throw new ArgumentException($"max-concurrent-requests: must be at least 1, got {MaxConcurrentRequests}");
        if (RetryAfter < TimeSpan.Zero)
            throw new ArgumentException($"retry-after: must not be negative, got {RetryAfter}");
        if (RejectStatusCode is not (StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable))
            throw new ArgumentException($"reject-status-code: must be 429 or 503, got {RejectStatusCode}");
        if (MaxPromptBytes is < 1)
            throw new ArgumentException($"max-prompt-bytes: must be at least 1, got {MaxPromptBytes}");
        if (RequestTimeout is { } timeout && (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromDays(1)))
            throw new ArgumentException($"request-timeout: must be between 0 and 86400 seconds, got {timeout.TotalSeconds}");
        if (DefaultCompletionMaxTokens < 1)
            throw new ArgumentException($"default-max-tokens: must be at least 1, got {DefaultCompletionMaxTokens}");
    }
}
