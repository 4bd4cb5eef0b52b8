using OServe.Models.Kv;
using OServe.Models.Llama;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// One sequence's cached K/V as bytes, free of any replica's layout, for moving it between
/// processes: for every layer in order, K then V of positions [0, NumTokens), each
/// [NumTokens, NumKvHeads, HeadDim] row-major in the cache's dtype. A source gathers its shards
/// (any tp and pp) into this form with <see cref="Write"/>; the target reads it back as a
/// single-shard host cache (<see cref="Read"/>) that <see cref="KvMigration.Copy"/> re-slices to
/// its own layout, as it does between replicas of one process.
/// </summary>
public static class KvWire
{
    /// <summary>What the bytes hold; <see cref="Bytes"/> is their length.</summary>
    public sealed record Header(int NumTokens, int NumLayers, int NumKvHeads, int HeadDim, ScalarType DType)
    {
        public long BytesPerTensor => (long)NumTokens * NumKvHeads * HeadDim * PagedKvCache.ElementSize(DType);
        public long Bytes => 2L * NumLayers * BytesPerTensor;
    }

    /// <summary>Positions [0, <paramref name="numTokens"/>) of the sequence at <paramref name="blockTable"/> in <paramref name="source"/>, as bytes.</summary>
    public static byte[] Write(ReplicaKvCache source, IReadOnlyList<int> blockTable, int numTokens, out Header header)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numTokens);
        header = new Header(numTokens, source.NumLayers, source.NumKvHeads, source.HeadDim, source.DType);
        if (header.Bytes > Array.MaxLength)
            throw new ArgumentException($"the KV of {numTokens} tokens is {header.Bytes} bytes, more than one message buffer holds");
        using var host = source.HostSingleBlock(numTokens);
        KvMigration.Copy(source, blockTable, host, [0], numTokens);
        var bytes = new byte[header.Bytes];
        long offset = 0;
        var cache = host.Shards[0].Cache;
        for (int layer = 0; layer < header.NumLayers; layer++)
            foreach (var t in new[] { cache.Keys(layer), cache.Values(layer) })
            {
                t.bytes.CopyTo(bytes.AsSpan((int)offset, (int)header.BytesPerTensor));
                offset += header.BytesPerTensor;
            }
        return bytes;
    }

    /// <summary>
    /// The bytes <see cref="Write"/> made, as an owned host cache of one block (block 0 holds
    /// positions [0, NumTokens)). Throws <see cref="ArgumentException"/> when they belong to
    /// another model than <paramref name="config"/> or their length is not the header's.
    /// </summary>
    public static ReplicaKvCache Read(LlamaConfig config, Header header, ReadOnlySpan<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(header);
        if (header.NumLayers != config.NumLayers || header.NumKvHeads != config.NumKvHeads || header.HeadDim != config.EffectiveHeadDim)
            throw new ArgumentException(
                $"KV of layers {header.NumLayers}, kv heads {header.NumKvHeads}, head dim {header.HeadDim} belongs to another model than this one " +
                $"(layers {config.NumLayers}, kv heads {config.NumKvHeads}, head dim {config.EffectiveHeadDim})");
        if (header.NumTokens <= 0)
            throw new ArgumentException($"KV of {header.NumTokens} tokens: must hold at least one");
        if (bytes.Length != header.Bytes)
            throw new ArgumentException($"KV of {header.NumTokens} tokens must be {header.Bytes} bytes, got {bytes.Length}");
        var host = ReplicaKvCache.HostSingleBlock(config, header.NumTokens, header.DType);
        try
        {
            var cache = host.Shards[0].Cache;
            long offset = 0;
            for (int layer = 0; layer < header.NumLayers; layer++)
                foreach (var t in new[] { cache.Keys(layer), cache.Values(layer) })
                {
                    bytes.Slice((int)offset, (int)header.BytesPerTensor).CopyTo(t.bytes);
                    offset += header.BytesPerTensor;
                }
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }
}
