using OServe.Models.Llama;
using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Parallelism;

/// <summary>
/// Logical devices that own one core each: the shards of a stage run at the same time on their
/// own threads, one intra-op thread each, and the replica still computes the single-device model.
/// </summary>
public sealed class CorePerDeviceTests : IDisposable
{
    private readonly LlamaModel untied = ParallelFixtures.Untied();
    private readonly DevicePool pool = DevicePool.Logical(4, oneCoreEach: true);

    public void Dispose() => untied.Dispose();

    [Theory]
    [InlineData(2, 1)]
    [InlineData(4, 1)]
    [InlineData(2, 2)]
    [InlineData(1, 2)]
    public void ShardsOnTheirOwnCoresGiveTheSingleDeviceLogits(int tp, int pp)
    {
        using var single = new SingleDeviceLlama(untied, ownsModel: false);
        using var expected = ParallelFixtures.Script(single, untied.Config.VocabSize);
        // On a thread of its own: Forward pins its caller to one intra-op thread, which must not leak into the test runner's threads.
        Tensor? actual = null;
        OnNewThread(() =>
        {
            using var replica = ParallelFixtures.Shard(untied, pool, tp, pp);
            actual = ParallelFixtures.Script(replica, untied.Config.VocabSize);
        });
        using (actual)
            Assert.True(ParallelFixtures.MaxAbsDiff(expected, actual!) < ParallelFixtures.Tolerance, $"tp={tp} pp={pp}: max diff {ParallelFixtures.MaxAbsDiff(expected, actual!)}");
    }

    [Fact]
    public void GreedyGenerationOnOwnCoresEqualsTheSingleDeviceModel()
    {
        int[] prompt = [3, 14, 15, 92, 65];
        using var single = new SingleDeviceLlama(untied, ownsModel: false);
        var expected = ParallelFixtures.Greedy(single, prompt, 24);
        List<int>? actual = null;
        OnNewThread(() =>
        {
            using var replica = ParallelFixtures.Shard(untied, pool, 2, 1);
            actual = ParallelFixtures.Greedy(replica, prompt, 24);
        });
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void PinningSetsOnlyTheCallingThreadsIntraOpThreads()
    {
        int before = IntraOpThreads.DefaultForNewThreads();
        int pinned = 0, pinnedCount = 0;
        OnNewThread(() =>
        {
            IntraOpThreads.PinCurrentThread(1);
            pinned = TorchSharp.torch.get_num_threads();
            pinnedCount = IntraOpThreads.PinnedCount;
        });
        Assert.Equal(1, pinned);
        Assert.Equal(1, pinnedCount);
        // A thread that never ran torch still starts from the process default.
        Assert.Equal(before, IntraOpThreads.DefaultForNewThreads());
        Assert.Equal(0, IntraOpThreads.PinnedCount);
        Assert.Throws<ArgumentOutOfRangeException>(() => IntraOpThreads.PinCurrentThread(0));
    }

    [Fact]
    public void OnlyLogicalDevicesOfAOneCorePoolOwnACore()
    {
        Assert.All(pool.Devices, d => Assert.True(d.OwnsCore));
        Assert.All(DevicePool.Logical(2).Devices, d => Assert.False(d.OwnsCore));
        Assert.Contains("one core each", pool.ToString());
    }

    private static void OnNewThread(Action work)
    {
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try { work(); }
            catch (Exception e) { error = e; }
        });
        thread.Start();
        thread.Join();
        if (error is not null) throw new Xunit.Sdk.XunitException("on the worker thread: " + error);
    }
}
