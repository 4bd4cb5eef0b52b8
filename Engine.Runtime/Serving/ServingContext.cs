using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>Everything the endpoints share, built once per server.</summary>
public sealed record ServingContext(
    ServeOptions Options,
    IInferenceEngine Engine,
    IReadOnlyList<string> ModelNames,
    RequestParser Parser,
    GenerationRunner Runner,
    ServingMetrics Metrics,
    TimeProvider Time)
{
    /// <summary>Unix seconds when the server was built: the "created" of every model it lists.</summary>
    public long StartedAt { get; init; }

    public required ServingLimits Limits { get; init; }

    public required LogprobFormatter Logprobs { get; init; }
}
