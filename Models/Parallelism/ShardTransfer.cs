using System.Diagnostics;
using OServe.Models.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// Fetches the weight slices of a new replica's shards. Each slice is assembled from the pool's
/// current holdings of the same weight (intervals along its split axis): first from the target
/// device itself, then devices of the same node, then any other, each piece copied device to
/// device (tensor.to(device); a tensor copy between logical CPU devices). Ranges no device holds
/// are read from the weight source, each tensor at most once per build.
/// </summary>
internal static class ShardTransfer
{
    public static (LlamaShard[] Shards, TransferReport Report) Load(
        ParallelLayout layout, IReadOnlyList<PoolDevice> devices, ScalarType dtype, IWeightSource source, bool copyFromPeers)
    {
        var clock = Stopwatch.StartNew();
        long sameDevice = 0, peers = 0, storage = 0;
        int copies = 0;
        var fetched = new Dictionary<(int Shard, WeightSlice Slice), Tensor>();
        var shards = new List<LlamaShard>();
        try
        {
            // By name across shards, so a tensor read from storage serves every shard that needs part of it.
            var needs = layout.Shards.SelectMany(s => layout.SlicesOf(s.Index).Select(slice => (Shard: s.Index, Slice: slice))).GroupBy(n => n.Slice.Name);
            foreach (var group in needs)
            {
                Tensor? full = null;
                try
                {
                    foreach (var (shard, slice) in group)
                    {
                        var target = devices[shard];
                        var pieces = new List<Tensor>();
                        long position = slice.Start;
                        while (position < slice.End)
                        {
                            var peer = copyFromPeers ? BestHolder(target, slice, position) : null;
                            if (peer is { } p)
                            {
                                long end = Math.Min(p.Holding.Slice.End, slice.End);
                                var view = p.Holding.Tensor.narrow(slice.Axis, position - p.Holding.Slice.Start, end - position);
                                var piece = CopyTo(view, target, dtype);
                                if (ReferenceEquals(p.Device, target)) sameDevice += Bytes(piece); else peers += Bytes(piece);
                                pieces.Add(piece);
                                position = end;
                            }
                            else
                            {
                                // Up to the next range some device holds (or the end of the slice).
                                long end = copyFromPeers ? NextHeldStart(target, slice, position) : slice.End;
                                full ??= LoadChecked(source, layout, slice.Name);
                                var piece = CopyTo(full.narrow(slice.Axis, position, end - position), target, dtype);
                                storage += Bytes(piece);
                                pieces.Add(piece);
                                position = end;
                            }
                            copies++;
                        }
                        var whole = pieces.Count == 1 ? pieces[0] : cat(pieces.ToArray(), slice.Axis).contiguous();
                        if (pieces.Count > 1) foreach (var p in pieces) p.Dispose();
                        fetched[(shard, slice)] = whole.DetachFromDisposeScope();
                    }
                }
                finally
                {
                    full?.Dispose();
                }
            }

            for (int i = 0; i < layout.NumShards; i++)
            {
                int index = i;
                shards.Add(new LlamaShard(layout, index, devices[index], dtype, slice => fetched.Remove((index, slice), out var t)
                    ? t
                    : throw new InvalidOperationException($"shard {index}: slice {slice} was not fetched")));
            }
            if (devices.Any(d => !d.IsLogical)) torch.cuda.synchronize();
            return (shards.ToArray(), new TransferReport(sameDevice, peers, storage, copies, clock.Elapsed));
        }
        catch
        {
            foreach (var t in fetched.Values) t.Dispose();
            foreach (var s in shards) s.Dispose();
            throw;
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

    /// <summary>A new contiguous tensor on the target device with the view's values (never an alias of the source's storage).</summary>
    private static Tensor CopyTo(Tensor view, PoolDevice target, ScalarType dtype)
    {
        var copy = view.to(dtype, target.Torch, copy: true);
        if (copy.is_contiguous()) return copy;
        var contiguous = copy.contiguous();
        copy.Dispose();
        return contiguous;
    }

    private static long Bytes(Tensor t) => t.NumberOfElements * t.ElementSize;
}
