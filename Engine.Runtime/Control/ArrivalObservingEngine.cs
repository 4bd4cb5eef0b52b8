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
    public int? MaxTokenBytes => inner.MaxTokenBytes;
    public IReadOnlyList<int> Encode(string text, bool addBos) => inner.Encode(text, addBos);
    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken) => inner.Encode(text, addBos, cancellationToken);
    public byte[] TokenBytes(int tokenId) => inner.TokenBytes(tokenId);
    public string Decode(IReadOnlyList<int> tokenIds) => inner.Decode(tokenIds);
    public EngineSnapshot Snapshot() => inner.Snapshot();

    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken)
    {
        // Counted only once admitted: a rejected request (bad input, full queue) is not demand served here.
        var events = inner.GenerateAsync(request, cancellationToken);
        recorder.Record(request.PromptTokens.Count, request.Sampling.MaxTokens);
        return events;
    }
}
