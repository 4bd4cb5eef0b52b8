using OServe.Engine.Execution;
using OServe.Engine.Tests.Distributed;
using OServe.Engine.Tests.EndToEnd;
using OServe.Models.Parallelism;
using Xunit;

namespace OServe.Engine.Tests.Execution;

/// <summary>
/// A request taken out of one engine with its KV cache, carried as <see cref="KvWire"/> bytes, and
/// continued in another engine (as a retired replica's request moves between workers): it streams
/// the tokens of an uninterrupted run and computes only its last token's context, not its prompt.
/// </summary>
public sealed class KvResumeTests
{
    private static readonly EngineSettings Settings = LocalCluster.Engine;

    [Fact]
    public async Task A_request_moved_with_its_KV_as_bytes_continues_exactly_and_computes_one_token_of_context()
    {
        using var model = LocalCluster.TinyModel();
        var request = ClusterServingTests.Greedy("kv", 5, 40);
        var reference = (await ClusterServingTests.ReferenceAsync([request]))[0];

        var (delivered, header, bytes) = await MoveOutAfterAsync(model, request, numTokens: 6);
        Assert.InRange(delivered.Count, 6, 39);
        Assert.Equal(request.PromptTokens.Count + delivered.Count - 1, header.NumTokens); // all but the last token's entries

        var steps = new StepLog();
        var rest = await ResumeAsync(model, request, delivered, KvBlocks.FromWire(model.Config, header, bytes), steps);

        Assert.Equal(reference, delivered.Concat(rest).ToArray());
        var first = steps.Snapshot()[0].Shape;
        Assert.Equal((0, 1), (first.PrefillTokens, first.NumDecodes)); // one token computed, over the imported context
    }

    [SkippableFact]
    public async Task On_a_real_model_the_moved_KV_is_what_the_request_attends_to_and_zeroed_KV_changes_the_answer()
    {
        // The tiny random model repeats one token whatever its context; stories260K's greedy story does not.
        var checkpoint = SharedData.Path("models", "stories260K", "stories260K.bin");
        Skip.If(checkpoint is null, "shared/models/stories260K not found next to the repository");
        using var model = OServe.Models.ModelLoader.Load(checkpoint, TorchSharp.torch.CPU, TorchSharp.torch.ScalarType.Float32);
        var prompt = new ModelTokenizer(model.Tokenizer).Encode("Once upon a time", addBos: true);
        var request = new GenerationRequest("story", prompt.ToArray(), new SamplingParams { MaxTokens = 60, Temperature = 0, IgnoreEos = true });
        List<int> reference;
        await using (var alone = LocalEngineBuilder.Create(model, Settings))
            reference = await TokensAsync(alone, request);

        var (delivered, header, bytes) = await MoveOutAfterAsync(model, request, numTokens: 10);
        var rest = await ResumeAsync(model, request, delivered, KvBlocks.FromWire(model.Config, header, bytes), new StepLog());
        var zeroed = await ResumeAsync(model, request, delivered, KvBlocks.FromWire(model.Config, header, new byte[bytes.Length]), new StepLog());

        Assert.Equal(reference, delivered.Concat(rest).ToList());
        Assert.NotEqual(rest, zeroed);
    }

    private static async Task<List<int>> TokensAsync(IInferenceEngine engine, GenerationRequest request)
    {
        var tokens = new List<int>();
        await foreach (var e in engine.GenerateAsync(request, CancellationToken.None))
            if (e.TokenId >= 0)
                tokens.Add(e.TokenId);
        return tokens;
    }

    [Fact]
    public void KV_bytes_of_another_model_or_length_are_refused_with_what_differs()
    {
        using var model = LocalCluster.TinyModel();
        var c = model.Config;
        var header = new KvWire.Header(4, c.NumLayers + 1, c.NumKvHeads, c.EffectiveHeadDim, model.Model.DType);
        var error = Assert.Throws<ArgumentException>(() => KvWire.Read(c, header, new byte[header.Bytes]));
        Assert.Contains($"layers {c.NumLayers + 1}", error.Message);
        var fits = header with { NumLayers = c.NumLayers };
        error = Assert.Throws<ArgumentException>(() => KvWire.Read(c, fits, new byte[fits.Bytes - 1]));
        Assert.Contains($"must be {fits.Bytes} bytes", error.Message);
    }

    /// <summary>Streams <paramref name="request"/> on a paced engine, moves it out with its KV after <paramref name="numTokens"/> tokens, and returns what the client got and the KV as bytes.</summary>
    private static async Task<(List<int> Delivered, KvWire.Header Header, byte[] Bytes)> MoveOutAfterAsync(
        OServe.Models.LoadedModel model, GenerationRequest request, int numTokens)
    {
        await using var source = LocalEngineBuilder.Create(model, Settings, stepObserver: new Paced());
        var delivered = new List<int>();
        await using var stream = source.GenerateAsync(request, CancellationToken.None).GetAsyncEnumerator();
        while (delivered.Count < numTokens && await stream.MoveNextAsync())
            if (stream.Current.TokenId >= 0)
                delivered.Add(stream.Current.TokenId);
        var moving = Assert.Single(await source.DetachAllAsync(withKv: true));
        byte[] bytes;
        KvWire.Header header;
        using (var kv = moving.TakeKv())
        {
            Assert.NotNull(kv);
            bytes = kv.ToWire(out header);
        }
        moving.HandOff(new OperationCanceledException("moved"));
        // What the engine produced before the move is still in the stream; then it ends with the hand-off.
        var ended = await Assert.ThrowsAsync<OperationCanceledException>(async () =>
        {
            while (await stream.MoveNextAsync())
                if (stream.Current.TokenId >= 0)
                    delivered.Add(stream.Current.TokenId);
        });
        Assert.Equal("moved", ended.Message);
        return (delivered, header, bytes);
    }

    private static async Task<List<int>> ResumeAsync(OServe.Models.LoadedModel model, GenerationRequest request, List<int> delivered, KvBlocks kv, StepLog steps)
    {
        await using var target = LocalEngineBuilder.Create(model, Settings, stepObserver: steps);
        var resumed = new GenerationRequest(request.RequestId, [.. request.PromptTokens, .. delivered],
            request.Sampling with { MaxTokens = request.Sampling.MaxTokens - delivered.Count }) { ResumedOutputTokens = delivered.Count };
        var rest = new List<int>();
        await foreach (var e in target.GenerateAsync(resumed, kv, CancellationToken.None))
            if (e.TokenId >= 0)
                rest.Add(e.TokenId);
        return rest;
    }

    private sealed class Paced : IStepObserver
    {
        public void OnStep(in StepRecord step) => Thread.Sleep(10);
    }
}
