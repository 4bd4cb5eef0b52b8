using OServe.Models.Kv;
using OServe.Models.Llama;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

/// <summary>
/// A stopped replica's host KV memory is reused by the next cache of the same shape: zeroed, as a
/// fresh one, and never handed to two caches at once.
/// </summary>
public sealed class HostKvMemoryTests
{
    // A shape no other test uses, so the pool's bag for it is this test's alone.
    private static readonly LlamaConfig Config = new() { Dim = 24, NumLayers = 3, NumHeads = 3, NumKvHeads = 1, VocabSize = 32, MaxSeqLen = 64, HiddenDim = 48 };

    [Fact]
    public void ACacheAfterADisposedOneReusesItsMemoryZeroed()
    {
        long[] shape = [7, 5, Config.NumKvHeads, Config.EffectiveHeadDim];
        using (var first = new PagedKvCache(Config, numBlocks: 7, blockSize: 5, CPU, ScalarType.Float32))
        {
            first.Keys(1).fill_(3.5f);
            first.Values(2).fill_(float.NaN);
        }
        Assert.Equal(2 * Config.NumLayers, HostKvMemory.KeptCount(shape, ScalarType.Float32)); // K and V of each layer kept
        using var second = new PagedKvCache(Config, numBlocks: 7, blockSize: 5, CPU, ScalarType.Float32);
        Assert.Equal(0, HostKvMemory.KeptCount(shape, ScalarType.Float32)); // all taken by the new cache, none allocated afresh
        for (int l = 0; l < Config.NumLayers; l++)
        {
            Assert.Equal(0, second.Keys(l).abs().sum().item<float>());
            Assert.Equal(0, second.Values(l).abs().sum().item<float>());
        }
    }

    [Fact]
    public void TwoLiveCachesNeverShareMemoryAndADoubleDisposeReturnsOnce()
    {
        var a = new PagedKvCache(Config, numBlocks: 9, blockSize: 3, CPU, ScalarType.Float32);
        a.Dispose();
        a.Dispose();
        Assert.Equal(2 * Config.NumLayers, HostKvMemory.KeptCount([9, 3, Config.NumKvHeads, Config.EffectiveHeadDim], ScalarType.Float32));
        using var b = new PagedKvCache(Config, numBlocks: 9, blockSize: 3, CPU, ScalarType.Float32);
        using var c = new PagedKvCache(Config, numBlocks: 9, blockSize: 3, CPU, ScalarType.Float32);
        var all = Enumerable.Range(0, Config.NumLayers).SelectMany(l => new[] { b.Keys(l), b.Values(l), c.Keys(l), c.Values(l) })
            .Select(t => t.storage<float>().data_ptr().ToInt64()).ToArray();
        Assert.Equal(all.Length, all.Distinct().Count());
    }
}
