using OServe.Engine.Execution;

namespace OServe.Engine.Control;

/// <summary>
/// Wraps the serving engine so every admitted request is counted by the controller's
/// <see cref="ArrivalRecorder"/> (prompt length, max_tokens); everything else passes through.
/// </summary>
public sealed class ArrivalObservingEngine(IInferenceEngine inner, ArrivalRecorder recorder) : IInferenceEngine
{
    public string ModelName => inner.ModelName;
    public int MaxModelLength => inner.MaxModelLength;
    public int? VocabSize => inner.VocabSize;
    public IReadOnlyList<int> Encode(string text, bool addBos) => inner.Encode(text, addBos);
    public EngineSnapshot Snapshot() => inner.Snapshot();

    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken)
    {
        // Counted only once admitted: a rejected request (bad input, full queue) is not demand served here.
        var events = inner.GenerateAsync(request, cancellationToken);
        recorder.Record(request.PromptTokens.Count, request.Sampling.MaxTokens);
        return events;
    }
}
