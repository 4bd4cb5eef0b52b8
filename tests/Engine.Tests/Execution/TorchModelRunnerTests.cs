using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Models;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Engine.Tests.Execution;

/// <summary>The real executor on a tiny random Llama: the engine's batched, chunked, preempted run equals plain greedy decoding.</summary>
public sealed class TorchModelRunnerTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    private readonly LoadedModel _model = fixture.Model;

    private int[] GreedyAlone(IReadOnlyList<int> prompt, int maxTokens)
    {
        var tokens = prompt.ToList();
        for (int i = 0; i < maxTokens; i++)
        {
            using var scope = NewDisposeScope();
            var logits = _model.Model.ForwardFull(tokens);
            tokens.Add((int)logits[-1].argmax().item<long>());
        }
        return [.. tokens.Skip(prompt.Count)];
    }

    private (EngineCore Core, CollectingSink Sink, TorchModelRunner Runner) Build(SchedulerConfig config)
    {
        var runner = TorchModelRunner.Create(_model.Model, config);
        var sink = new CollectingSink();
        var tokenizer = new ModelTokenizer(_model.Tokenizer);
        var scheduler = new Scheduler(config, new TokenStopCondition(tokenizer.EosTokenId));
        return (new EngineCore(scheduler, runner, new VirtualClock(), sink, tokenizer), sink, runner);
    }

    [Fact]
    public void Batched_chunked_and_preempted_greedy_generation_equals_each_request_decoded_alone()
    {
        // 10 blocks of 4 tokens and a 12-token budget: prompts are chunked and sequences preempted.
        var config = new SchedulerConfig { NumKvBlocks = 10, BlockSize = 4, MaxNumBatchedTokens = 12, MaxNumSeqs = 4, MaxModelLen = 40 };
        var (core, sink, runner) = Build(config);
        using var _ = runner;
        var prompts = new[] { "Once upon a time there was", "The cat", "A very long prompt that needs chunks to fit" }
            .Select(p => _model.Tokenizer.Encode(p, addBos: false)).ToArray();
        for (int i = 0; i < prompts.Length; i++)
            core.AddRequest(new GenerationRequest($"r{i}", prompts[i], new SamplingParams { MaxTokens = 8, Temperature = 0, IgnoreEos = true }));
        while (core.HasWork)
            core.Step();

        Assert.True(core.Scheduler.NumPreemptionsTotal > 0, "the setup was meant to preempt");
        for (int i = 0; i < prompts.Length; i++)
        {
            var expected = GreedyAlone(prompts[i], 8);
            Assert.Equal(expected, sink.Of($"r{i}").Select(o => o.TokenId));
            Assert.Equal(_model.Tokenizer.Decode(expected), sink.TextOf($"r{i}"));
        }
    }

    [Fact]
    public void A_seeded_request_samples_the_same_tokens_alone_and_in_a_batch()
    {
        var config = new SchedulerConfig { NumKvBlocks = 64, BlockSize = 4, MaxNumBatchedTokens = 64, MaxNumSeqs = 8, MaxModelLen = 64 };
        // Bit-for-bit equal logits are what make temperature sampling agree. The CPU kernel computes a
        // row with the same operations whatever rows share the call, and torch's GEMM does for the
        // prompt; a prompt of 2-4 tokens alone would take the kernel and in this batch torch's GEMM,
        // which round differently, so the prompt is longer than the kernel's rows.
        var prompt = _model.Tokenizer.Encode("Hello there, how are you doing today?", addBos: false);
        Assert.True(prompt.Count > 4, $"prompt of {prompt.Count} tokens");
        var sampling = new SamplingParams { MaxTokens = 10, Temperature = 1.2f, TopP = 0.95f, Seed = 1234, IgnoreEos = true };

        int[] Run(int numOthers)
        {
            var (core, sink, runner) = Build(config);
            using var _ = runner;
            core.AddRequest(new GenerationRequest("seeded", prompt, sampling));
            for (int i = 0; i < numOthers; i++)
                core.AddRequest(new GenerationRequest($"other{i}", prompt, sampling with { Seed = (ulong)i }));
            while (core.HasWork)
                core.Step();
            return [.. sink.Of("seeded").Select(o => o.TokenId)];
        }

        var alone = Run(0);
        Assert.Equal(alone, Run(3));
        Assert.Equal(10, alone.Length);
    }
}

/// <summary>One tiny random model for all tests of the class (building it dominates their time).</summary>
public sealed class TinyModelFixture : IDisposable
{
    public LoadedModel Model { get; } = BuiltInModel.Create(new BuiltInModelOptions
    {
        Dim = 64, HiddenDim = 172, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxSeqLen = 128, Seed = 7,
    });

    public void Dispose() => Model.Dispose();
}
