using System.Diagnostics;
using OServe.Models.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// Fills a new replica's shards. The shards' storage is allocated first; each slice is then
/// assembled in place from the pool's current holdings of the same weight (intervals along its
/// split axis): first from the target device itself, then devices of the same node, then any
/// other, each piece one copy_ device to device (peer-to-peer between CUDA devices, a memory copy
/// between logical CPU devices). Ranges no device holds are read from the weight source, each
/// tensor at most once per build, converted to the model dtype by the same copy.
/// </summary>
internal static class ShardTransfer
{
    /// <param name="devices">one per shard built: shards firstShard .. firstShard + devices.Count - 1 of the layout (a run of stages; all of them by default).</param>
    public static (LlamaShard[] Shards, TransferReport Report) Load(
        ParallelLayout layout, IReadOnlyList<PoolDevice> devices, ScalarType dtype, IWeightSource source, bool copyFromPeers, int firstShard = 0)
    {
        var clock = Stopwatch.StartNew();
        long sameDevice = 0, peers = 0, storage = 0;
        int copies = 0;
        var shards = new List<LlamaShard>();
        // The new replica's storage, allocated up front; every byte is then copied into place exactly once.
        var groups = new List<(WeightSlice[] Parts, Tensor Storage)>[devices.Count];
        var destinations = new Dictionary<(int Shard, WeightSlice Slice), Tensor>();
        try
        {
            for (int i = 0; i < devices.Count; i++)
            {
                groups[i] = [];
                foreach (var parts in LlamaShard.Groups(layout, firstShard + i))
                {
                    var buffer = empty(LlamaShard.GroupShape(layout, parts), dtype, devices[i].Torch).DetachFromDisposeScope();
                    groups[i].Add((parts, buffer));
                    long row = 0;
                    foreach (var part in parts)
                    {
                        long rows = layout.ShapeOf(part)[0];
                        destinations[(i, part)] = parts.Length == 1 ? buffer.alias() : buffer.narrow(0, row, rows);
                        row += rows;
                    }
                }
            }

            // By name across shards, so a tensor read from storage serves every shard that needs part of it.
            foreach (var group in destinations.Keys.GroupBy(k => k.Slice.Name))
            {
                Tensor? full = null;
                try
                {
                    foreach (var (shard, slice) in group)
                    {
                        var target = devices[shard];
                        var destination = destinations[(shard, slice)];
                        long position = slice.Start;
                        while (position < slice.End)
                        {
                            var peer = copyFromPeers ? BestHolder(target, slice, position) : null;
                            long end;
                            Tensor from;
                            if (peer is { } p)
                            {
                                end = Math.Min(p.Holding.Slice.End, slice.End);
                                from = p.Holding.Tensor.narrow(slice.Axis, position - p.Holding.Slice.Start, end - position);
                            }
                            else
                            {
                                // Up to the next range some device holds (or the end of the slice).
                                end = copyFromPeers ? NextHeldStart(target, slice, position) : slice.End;
                                full ??= LoadChecked(source, layout, slice.Name);
                                from = full.narrow(slice.Axis, position, end - position);
                            }
                            var into = destination.narrow(slice.Axis, position - slice.Start, end - position);
                            into.copy_(from);
                            long bytes = into.NumberOfElements * into.ElementSize;
                            if (peer is null) storage += bytes;
                            else if (ReferenceEquals(peer.Value.Device, target)) sameDevice += bytes;
                            else peers += bytes;
                            into.Dispose();
                            from.Dispose();
                            copies++;
                            position = end;
                        }
                    }
                }
                finally
                {
                    full?.Dispose();
                }
            }

            for (int i = 0; i < devices.Count; i++)
            {
                shards.Add(new LlamaShard(layout, firstShard + i, devices[i], dtype, groups[i]));
                groups[i] = [];
            }
            if (devices.Any(d => !d.IsLogical)) torch.cuda.synchronize();
            return (shards.ToArray(), new TransferReport(sameDevice, peers, storage, copies, clock.Elapsed));
        }
        catch
        {
            foreach (var g in groups) if (g is not null) foreach (var (_, t) in g) t.Dispose();
            foreach (var s in shards) s.Dispose();
            throw;
        }
        finally
        {
            foreach (var d in destinations.Values) d.Dispose();
        }
    }

    private static Tensor LoadChecked(IWeightSource source, ParallelLayout layout, string name)
    {
        var t = source.Load(name);
        var expected = layout.FullShape(name);
        if (!t.shape.SequenceEqual(expected))
        {
            string actual = string.Join(", ", t.shape);
            t.Dispose();
            throw new InvalidDataException($"{source.Origin}: tensor '{name}' has shape [{actual}], the config expects [{string.Join(", ", expected)}]");
        }
        return t;
    }

    /// <summary>A holding that contains <paramref name="position"/>: on the target itself, else on its node, else anywhere; the longest reach wins a tie.</summary>
    private static (PoolDevice Device, PoolDevice.Holding Holding)? BestHolder(PoolDevice target, WeightSlice wanted, long position)
    {
        var point = wanted with { Start = position, Length = 1 };
        return target.Pool.FindHolders(point)
            .OrderBy(h => ReferenceEquals(h.Device, target) ? 0 : h.Device.Node == target.Node ? 1 : 2)
            .ThenByDescending(h => h.Holding.Slice.End)
            .Select(h => ((PoolDevice, PoolDevice.Holding)?)h)
            .FirstOrDefault();
    }

    private static long NextHeldStart(PoolDevice target, WeightSlice wanted, long position)
    {
        var rest = wanted with { Start = position, Length = wanted.End - position };
        var starts = target.Pool.FindHolders(rest).Select(h => h.Holding.Slice.Start).Where(s => s > position).ToArray();
        return starts.Length == 0 ? wanted.End : starts.Min();
    }

}
