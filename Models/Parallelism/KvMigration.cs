using OServe.Models.Kv;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// Moves one sequence's cached K/V between replicas whose layouts may differ (tp=1 to tp=2
/// re-slices KV heads; a pp change re-slices layers; block sizes may differ too). For every
/// layer and every KV head the target holds, the first source shard holding that (layer, head)
/// provides positions 0..numTokens-1, gathered from the source's slots and scattered into the
/// target's, device to device. Replicated KV heads (tp above the KV head count) are written to
/// every target shard that holds them.
/// </summary>
public static class KvMigration
{
    /// <summary>What a migration moved.</summary>
    public sealed record Report(long Bytes, int NumCopies);

    public static Report Copy(ReplicaKvCache source, IReadOnlyList<int> sourceBlockTable, ReplicaKvCache target, IReadOnlyList<int> targetBlockTable, int numTokens)
    {
        if (source.NumLayers != target.NumLayers || source.NumKvHeads != target.NumKvHeads || source.HeadDim != target.HeadDim)
            throw new ArgumentException(
                $"source cache (layers {source.NumLayers}, kv heads {source.NumKvHeads}, head dim {source.HeadDim}) and target cache " +
                $"(layers {target.NumLayers}, kv heads {target.NumKvHeads}, head dim {target.HeadDim}) belong to different models");
        if (numTokens < 0) throw new ArgumentOutOfRangeException(nameof(numTokens), numTokens, "the number of tokens to move cannot be negative");
        if (numTokens == 0) return new Report(0, 0);
        var sourceSlots = Slots(source, sourceBlockTable, numTokens, "source");
        var targetSlots = Slots(target, targetBlockTable, numTokens, "target");

        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var sourceIndex = new Dictionary<(DeviceType, int), Tensor>();
        var targetIndex = new Dictionary<(DeviceType, int), Tensor>();
        Tensor On(Dictionary<(DeviceType, int), Tensor> cache, long[] slots, Device d) =>
            cache.TryGetValue((d.type, d.index), out var t) ? t : cache[(d.type, d.index)] = tensor(slots, device: d);

        long bytes = 0;
        int copies = 0;
        int hd = source.HeadDim;
        foreach (var dst in target.Shards)
        {
            var dstSlots = On(targetIndex, targetSlots, dst.Device);
            for (int layer = dst.Layers.Start; layer < dst.Layers.End; layer++)
            {
                int head = dst.KvHeads.Start;
                while (head < dst.KvHeads.End)
                {
                    var src = source.Shards.First(s => s.Layers.Contains(layer) && s.KvHeads.Contains(head));
                    int count = Math.Min(src.KvHeads.End, dst.KvHeads.End) - head;
                    var srcSlots = On(sourceIndex, sourceSlots, src.Device);
                    foreach (var (from, to) in new[]
                             {
                                 (src.Cache.Keys(layer - src.Layers.Start), dst.Cache.Keys(layer - dst.Layers.Start)),
                                 (src.Cache.Values(layer - src.Layers.Start), dst.Cache.Values(layer - dst.Layers.Start)),
                             })
                    {
                        var rows = from.view(-1, src.KvHeads.Count, hd).index_select(0, srcSlots).narrow(1, head - src.KvHeads.Start, count);
                        var moved = rows.to(to.dtype, to.device);
                        to.view(-1, dst.KvHeads.Count, hd).narrow(1, head - dst.KvHeads.Start, count).index_copy_(0, dstSlots, moved);
                        bytes += moved.NumberOfElements * moved.ElementSize;
                        copies++;
                    }
                    head += count;
                }
            }
        }
        return new Report(bytes, copies);
    }

    private static long[] Slots(ReplicaKvCache cache, IReadOnlyList<int> blockTable, int numTokens, string which)
    {
        var slots = new long[numTokens];
        var shard = cache.Shards[0].Cache;
        for (int p = 0; p < numTokens; p++)
        {
            try
            {
                slots[p] = shard.Slot(blockTable, p);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"{which} block table cannot hold {numTokens} tokens: {e.Message}", e);
            }
        }
        return slots;
    }
}
