using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using OServe.Models.Parallelism;
using Xunit;

namespace OServe.Engine.Tests.Distributed;

/// <summary>Moved requests' KV entries waiting on their worker: taken whole here, read as bytes elsewhere, freed when released or unclaimed.</summary>
public sealed class KvParkingTests
{
    private static KvBlocks Kv(int numTokens, float fill)
    {
        using var model = LocalCluster.TinyModel();
        var cache = ReplicaKvCache.HostSingleBlock(model.Config, numTokens, model.Model.DType);
        foreach (var shard in cache.Shards)
            for (int l = 0; l < shard.Cache.NumLayers; l++)
            {
                shard.Cache.Keys(l).fill_(fill);
                shard.Cache.Values(l).fill_(-fill);
            }
        return new KvBlocks(cache, numTokens);
    }

    [Fact]
    public void A_ticket_is_taken_whole_once_or_read_in_chunks_as_KvWire_bytes_until_released()
    {
        using var parking = new KvParking(TimeSpan.FromMinutes(1));
        long local = parking.Park(Kv(5, 1));
        using (var taken = parking.TakeLocal(local))
            Assert.Equal(5, taken!.NumTokens);
        Assert.Null(parking.TakeLocal(local));
        Assert.Null(parking.Open(local));

        long remote = parking.Park(Kv(3, 2));
        var header = parking.Open(remote)!;
        Assert.Equal(3, header.NumTokens);
        var h = header.ToHeader();
        var bytes = parking.Read(remote, 0, (int)h.Bytes / 2).Concat(parking.Read(remote, h.Bytes / 2, (int)(h.Bytes - h.Bytes / 2))).ToArray();
        using var model = LocalCluster.TinyModel();
        using var back = KvBlocks.FromWire(model.Config, h, bytes);
        Assert.Equal(2f, back.Blocks.Shards[0].Cache.Keys(0)[0, 0, 0, 0].item<float>());
        Assert.Equal(-2f, back.Blocks.Shards[0].Cache.Values(1)[0, 2, 1, 3].item<float>());
        Assert.Null(parking.TakeLocal(remote)); // opened for a peer: its bytes are what is left
        Assert.Throws<ArgumentOutOfRangeException>(() => parking.Read(remote, h.Bytes - 1, 2));

        parking.Release(remote);
        Assert.Equal(0, parking.Count);
        var error = Assert.Throws<InvalidOperationException>(() => parking.Read(remote, 0, 1));
        Assert.Contains($"KV ticket {remote} is not open here", error.Message);
    }

    [Fact]
    public async Task An_unclaimed_ticket_is_freed_after_its_time()
    {
        using var parking = new KvParking(TimeSpan.FromMilliseconds(50));
        long id = parking.Park(Kv(2, 1));
        await Task.Delay(150);
        parking.Sweep();
        Assert.Equal(0, parking.Count);
        Assert.Null(parking.Open(id));
    }
}
