using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Engine.Tests.Execution;

/// <summary>The on-device sampler (run here on CPU tensors): known draws from known distributions, and the runner with it.</summary>
public sealed class DeviceSamplerTests(TinyModelFixture fixture) : IClassFixture<TinyModelFixture>
{
    // Probabilities 0.1, 0.4, 0.2, 0.3 for ids 0..3; in descending order: id 1 (0.4), 3 (0.3), 2 (0.2), 0 (0.1).
    private static Tensor Logits(int rows) =>
        tensor(new[] { 0.1f, 0.4f, 0.2f, 0.3f }).log().unsqueeze(0).expand(rows, 4).contiguous();

    private static long Draw(DeviceSampler.Row row)
    {
        using var logits = Logits(1);
        return DeviceSampler.Sample(logits, [row])[0];
    }

    [Theory]
    [InlineData(0.05, 1)]
    [InlineData(0.45, 3)]
    [InlineData(0.75, 2)]
    [InlineData(0.95, 0)]
    public void An_untruncated_draw_walks_the_candidates_in_descending_probability(double u, long expected) =>
        Assert.Equal(expected, Draw(new DeviceSampler.Row(1f, -1, 1f, u)));

    [Fact]
    public void Top_k_and_top_p_keep_the_same_candidates_as_the_host_sampler()
    {
        // top_k 2 keeps ids 1 and 3 (mass 0.7): u 0.99 takes the second of them, never id 2 or 0.
        Assert.Equal(3, Draw(new DeviceSampler.Row(1f, 2, 1f, 0.99)));
        Assert.Equal(1, Draw(new DeviceSampler.Row(1f, 2, 1f, 0.5)));
        // top_p 0.5: id 1 (mass before 0) and id 3 (mass before 0.4 < 0.5) stay, as Sampler keeps them.
        Assert.Equal(3, Draw(new DeviceSampler.Row(1f, -1, 0.5f, 0.99)));
        // top_p so small that only the best stays; top_k 1 and greedy are argmax.
        Assert.Equal(1, Draw(new DeviceSampler.Row(1f, -1, 0.01f, 0.99)));
        Assert.Equal(1, Draw(new DeviceSampler.Row(1f, 1, 1f, 0.99)));
        Assert.Equal(1, Draw(new DeviceSampler.Row(0f, -1, 1f, 0.99)));
    }

    [Fact]
    public void Rows_of_one_batch_are_drawn_each_by_its_own_controls()
    {
        using var logits = Logits(3);
        var ids = DeviceSampler.Sample(logits, [new(0f, -1, 1f, 0), new(1f, -1, 1f, 0.95), new(1f, 2, 1f, 0.99)]);
        Assert.Equal(new long[] { 1, 0, 3 }, ids);
    }

    [Fact]
    public void The_runner_sampling_on_the_device_repeats_a_seeded_request_and_stays_in_its_top_k()
    {
        var model = fixture.Model;
        var config = new SchedulerConfig { NumKvBlocks = 64, BlockSize = 4, MaxNumBatchedTokens = 64, MaxNumSeqs = 8, MaxModelLen = 64 };
        var prompt = model.Tokenizer.Encode("Hello there, how are you doing today?", addBos: false);
        var sampling = new SamplingParams { MaxTokens = 10, Temperature = 1.5f, TopK = 5, Seed = 99, IgnoreEos = true };

        int[] Run()
        {
            using var runner = new TorchModelRunner(new SingleDeviceLlama(model.Model, ownsModel: false),
                new SingleDeviceLlama(model.Model, ownsModel: false).CreateKvCache(config.NumKvBlocks, config.BlockSize), ownsCache: true, sampleOnDevice: true);
            var sink = new CollectingSink();
            var core = new EngineCore(new Scheduler(config), runner, new VirtualClock(), sink);
            core.AddRequest(new GenerationRequest("seeded", prompt, sampling));
            while (core.HasWork) core.Step();
            Assert.True(runner.LastTimings.WaitSeconds >= 0 && runner.LastTimings.PrepareSeconds > 0);
            return [.. sink.Of("seeded").Select(o => o.TokenId)];
        }

        var first = Run();
        Assert.Equal(10, first.Length);
        Assert.Equal(first, Run());
        // Each sampled token is among the top 5 of its step's logits.
        var tokens = prompt.ToList();
        foreach (int id in first)
        {
            using var scope = NewDisposeScope();
            var top = model.Model.ForwardFull(tokens)[-1].topk(5).indexes.data<long>().ToArray();
            Assert.Contains((long)id, top);
            tokens.Add(id);
        }
    }
}
