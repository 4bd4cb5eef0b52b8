using OServe.Models.Llama;
using OServe.Models.Tests.Llama;
using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Parallelism;

/// <summary>
/// A replica cut into runs of stages, each with its own KV cache and handed the previous run's
/// activations (as when its stages sit on several workers), computes what the whole replica does.
/// </summary>
public sealed class PipelinedLlamaTests : IDisposable
{
    private readonly LlamaModel model = TinyModels.Random(7, config: ParallelFixtures.Untied().Config with { NumLayers = 4 });
    private readonly DevicePool pool = DevicePool.Logical(8);

    public void Dispose() => model.Dispose();

    [Theory]
    [InlineData(1, 2, new[] { 1 })]        // two stages, one per run
    [InlineData(2, 2, new[] { 1 })]        // tp2 in each run
    [InlineData(1, 4, new[] { 1, 3 })]     // three runs: 1, 2 and 1 stages
    [InlineData(2, 4, new[] { 2 })]
    public void Runs_of_stages_chained_compute_the_whole_replicas_logits(int tp, int pp, int[] cuts)
    {
        using var whole = ParallelFixtures.Shard(model, pool, tp, pp);
        var bounds = new[] { 0 }.Concat(cuts).Append(pp).ToArray();
        var runs = Enumerable.Range(0, bounds.Length - 1).Select(i =>
        {
            var stages = new IndexRange(bounds[i], bounds[i + 1] - bounds[i]);
            var devices = pool.Devices.Skip(stages.Start * tp).Take(stages.Count * tp).ToArray();
            return ParallelLlama.Create(model.Config, devices, tp, pp, new ModelWeightSource(model), model.DType, stages: stages);
        }).ToArray();
        using var pipelined = new PipelinedLlama(runs[0], runs.Skip(1).Select(r => (IStageRun)new LocalStageRun(r)).ToArray());

        using var expected = ParallelFixtures.Script(whole, model.Config.VocabSize);
        using var actual = ParallelFixtures.Script(pipelined, model.Config.VocabSize);
        Assert.True(ParallelFixtures.MaxAbsDiff(expected, actual) < ParallelFixtures.Tolerance,
            $"logits differ by {ParallelFixtures.MaxAbsDiff(expected, actual)}");
        Assert.False(runs[0].IsWhole);
        using var headCache = runs[0].CreateKvCache(2, 4);
        Assert.False(headCache.HoldsEveryLayer); // a sequence's KV cannot leave such a replica whole
    }

    [Fact]
    public void Runs_that_do_not_follow_one_another_or_a_part_run_whole_are_refused()
    {
        var first = ParallelLlama.Create(model.Config, pool.Devices.Take(1).ToArray(), 1, 4, new ModelWeightSource(model), model.DType, stages: new IndexRange(0, 1));
        using var gap = new LocalStageRun(ParallelLlama.Create(model.Config, pool.Devices.Skip(1).Take(2).ToArray(), 1, 4, new ModelWeightSource(model), model.DType,
            stages: new IndexRange(2, 2)));
        var error = Assert.Throws<ArgumentException>(() => new PipelinedLlama(first, [gap]));
        Assert.Contains("after stage 0 comes 2..4", error.Message);
        using var cache = first.CreateKvCache(2, 4);
        Assert.Throws<InvalidOperationException>(() => first.Forward([new OServe.Models.Kv.SequenceChunk([1, 2], 0, [0])], cache));
        first.Dispose();
    }
}
