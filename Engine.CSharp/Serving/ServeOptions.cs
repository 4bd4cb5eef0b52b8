using System.Net;

namespace OServe.Engine.Serving;

/// <summary>What `oserve serve` exposes and how it admits work; vLLM's flag names where they mean the same.</summary>
public sealed record ServeOptions
{
    /// <summary>Interface to bind. Loopback by default: exposing the server is an explicit choice.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>TCP port; 0 picks a free one (read it back with <see cref="ServerHost.BoundAddress"/>).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>When set, every /v1 route requires "Authorization: Bearer &lt;key&gt;".</summary>
    public string? ApiKey { get; init; }

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
        if (DefaultCompletionMaxTokens < 1)
            throw new ArgumentException($"default-max-tokens: must be at least 1, got {DefaultCompletionMaxTokens}");
    }
}
