using OServe.Engine.Scheduling;

namespace OServe.Engine.Execution;

/// <summary>
/// One thing that happened to a request in a step: a new token (with its text delta), a finish,
/// or both. <see cref="TokenId"/> is <see cref="IModelRunner.NoToken"/> for an abort or failure.
/// Times are engine-clock seconds; <see cref="InterTokenLatency"/> is 0 for a first token.
/// <see cref="NumOutputTokens"/> is the count at emission (the sequence object keeps changing).
/// </summary>
public readonly record struct RequestOutput(
    Sequence Sequence,
    int TokenId,
    int NumOutputTokens,
    string TextDelta,
    FinishReason FinishReason,
    double Time,
    double InterTokenLatency,
    Exception? Error = null)
{
    public bool IsFinished => FinishReason != FinishReason.None;
    public bool IsFirstToken => TokenId >= 0 && NumOutputTokens == 1;

    /// <summary>The token's logprob when its request asked for logprobs.</summary>
    public TokenLogprob? Logprob { get; init; }
}

/// <summary>Receives every <see cref="RequestOutput"/> on the engine loop thread; must be quick and must not throw.</summary>
public interface IGenerationSink
{
    void OnOutput(in RequestOutput output);
}
