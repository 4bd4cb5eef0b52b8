using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Engine.Tests.Scheduling;

namespace OServe.Engine.Tests.Execution;

/// <summary>
/// Tokenizer for engine tests: token ids map to fixed strings (a script may name some), EOS = 2
/// decodes to nothing.
/// </summary>
internal sealed class FakeTokenizer(IReadOnlyDictionary<int, string>? texts = null) : IEngineTokenizer
{
    public const int Eos = 2;

    public int VocabSize => 600;
    public int? EosTokenId => Eos;

    public string TextOf(int id) => id == Eos ? "" : texts is not null && texts.TryGetValue(id, out var t) ? t : $"<{id}>";

    public IReadOnlyList<int> Encode(string text, bool addBos) => [.. (addBos ? [1] : Array.Empty<int>()), .. text.Select(c => 10 + c % 500)];

    public ITokenStreamDecoder CreateDecoder(IReadOnlyList<int> promptTokens) => new Decoder(this);

    private sealed class Decoder(FakeTokenizer tokenizer) : ITokenStreamDecoder
    {
        public string Add(int tokenId) => tokenizer.TextOf(tokenId);
        public string Flush() => "";
    }
}

/// <summary>
/// Deterministic runner that behaves like a model with a KV cache: it tracks what it has
/// "computed" per request and fails on any chunk that does not continue it (or restart at 0
/// after a preemption), and samples a hash of the whole prefix (or a scripted token).
/// </summary>
internal class FakeModelRunner(Func<Sequence, int>? script = null) : IModelRunner
{
    private readonly Dictionary<string, int> _computed = new(StringComparer.Ordinal);

    public int NumSteps { get; private set; }

    public virtual void Execute(SchedulerOutput output, Span<int> sampledTokens)
    {
        foreach (var id in output.FinishedRequestIds)
            _computed.Remove(id);
        foreach (var seq in output.Preempted)
            _computed.Remove(seq.RequestId);
        if (output.IsEmpty)
            return;
        NumSteps++;
        for (int k = 0; k < output.NumChunks; k++)
        {
            var chunk = output.Chunks[k];
            int computed = _computed.GetValueOrDefault(chunk.Sequence.RequestId);
            if (chunk.StartPosition != computed)
                throw new InvalidOperationException($"{chunk.Sequence.RequestId}: chunk starts at {chunk.StartPosition} but {computed} tokens are cached");
            _computed[chunk.Sequence.RequestId] = chunk.EndPosition;
            if (chunk.SamplesToken)
                sampledTokens[k] = (script ?? SchedulingTestKit.NextToken)(chunk.Sequence);
        }
    }

    /// <summary>The tokens a request gets from this runner's default model when nothing stops it.</summary>
    public static int[] ExpectedOutput(string requestId, IReadOnlyList<int> prompt, int maxTokens)
    {
        var seq = new Sequence(requestId, prompt, new SamplingParams { MaxTokens = maxTokens, IgnoreEos = true });
        var scheduler = new Scheduler(new SchedulerConfig { NumKvBlocks = 1024, BlockSize = 16, MaxModelLen = 4096, MaxNumBatchedTokens = 4096 });
        scheduler.Add(seq);
        SchedulingTestKit.RunToCompletion(scheduler);
        return [.. seq.OutputTokens];
    }
}

/// <summary>Blocks every step until released: lets tests hold the engine loop inside a step.</summary>
internal sealed class GatedRunner : FakeModelRunner
{
    private readonly SemaphoreSlim _gate = new(0);

    public SemaphoreSlim Entered { get; } = new(0);
    public volatile bool IsOpen;

    public override void Execute(SchedulerOutput output, Span<int> sampledTokens)
    {
        if (!output.IsEmpty && !IsOpen)
        {
            Entered.Release();
            _gate.Wait();
        }
        base.Execute(output, sampledTokens);
    }

    public void Open()
    {
        IsOpen = true;
        _gate.Release(1000);
    }
}

/// <summary>Records everything an <see cref="EngineCore"/> emits.</summary>
internal sealed class CollectingSink : IGenerationSink
{
    public List<RequestOutput> Outputs { get; } = [];

    public void OnOutput(in RequestOutput output) => Outputs.Add(output);

    public List<RequestOutput> Of(string requestId) => [.. Outputs.Where(o => o.Sequence.RequestId == requestId)];

    public string TextOf(string requestId) => string.Concat(Of(requestId).Select(o => o.TextDelta));
}
