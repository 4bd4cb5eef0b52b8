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
    TimeProvider Time);
