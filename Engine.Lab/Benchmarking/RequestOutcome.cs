namespace OServe.Engine.Benchmarking;

/// <summary>
/// What one request measured, in seconds as vLLM records them. Latency runs from sending the
/// request to the end of its stream ("data: [DONE]"); ITL holds the gap before each text chunk after the first.
/// </summary>
public sealed record RequestOutcome
{
    public required bool Success { get; init; }
    public required int PromptLen { get; init; }
    /// <summary>From the usage chunk when the server sends one, else the number of text chunks.</summary>
    public int OutputTokens { get; init; }
    public bool OutputTokensFromUsage { get; init; }
    public double Ttft { get; init; }
    public double Latency { get; init; }
    public double[] Itl { get; init; } = [];
    public string GeneratedText { get; init; } = "";
    /// <summary>Empty on success, else one line: HTTP status and body, timeout, broken stream, or connect failure.</summary>
    public string Error { get; init; } = "";
    /// <summary>True when the request never reached the server.</summary>
    public bool IsConnectFailure { get; init; }
    /// <summary>When the request was sent, seconds from the start of the run (its arrival in a trace replay, up to timer slack).</summary>
    public double SentAtS { get; init; }

    /// <summary>vLLM's TPOT: decode time per output token after the first; 0 for one-token outputs.</summary>
    public double Tpot => OutputTokens > 1 ? (Latency - Ttft) / (OutputTokens - 1) : 0;
}
