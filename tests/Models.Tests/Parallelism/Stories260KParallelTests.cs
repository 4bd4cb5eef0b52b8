using OServe.Models.Loading;
using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Parallelism;

/// <summary>The real tiny model (8 heads, 4 KV heads, 5 layers, tied embeddings) split every way the issue names.</summary>
public sealed class Stories260KParallelTests
{
    private static string Checkpoint => Path.Combine(SharedData.Stories260K, "stories260K.bin");

    [SkippableFact]
    public void EverySplitMatchesTheSingleDeviceModelAndGeneratesTheSameText()
    {
        SharedData.SkipUnlessStories260K();
        var (config, weights) = Llama2cCheckpoint.Read(Checkpoint);
        using var _ = weights;
        using var loaded = ModelLoader.Load(Checkpoint, CPU, ScalarType.Float32);
        using var single = new SingleDeviceLlama(loaded.Model, ownsModel: false);
        using var expected = ParallelFixtures.Script(single, config.VocabSize);
        var prompt = loaded.Tokenizer.Encode("Once upon a time, a little", addBos: true);
        var expectedText = ParallelFixtures.Greedy(single, prompt, 48);
        var pool = DevicePool.Logical(4);
        foreach (var (tp, pp) in new[] { (2, 1), (4, 1), (1, 2), (2, 2) })
        {
            // From the checkpoint's own weights (storage), not from the loaded model.
            using var replica = ParallelLlama.Create(config, pool.Devices.Take(tp * pp).ToArray(), tp, pp, weights, ScalarType.Float32);
            using var actual = ParallelFixtures.Script(replica, config.VocabSize);
            float diff = ParallelFixtures.MaxAbsDiff(expected, actual);
            Assert.True(diff < 1e-3f, $"tp={tp} pp={pp}: logits differ by {diff}");
            Assert.Equal(expectedText, ParallelFixtures.Greedy(replica, prompt, 48));
        }
        Assert.Contains(' ', loaded.Tokenizer.Decode(expectedText));
    }
}
