using OServe.Models.Kv;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// Host-side index data of one step for <see cref="FusedForward"/>, packed into one int64 array
/// so that it reaches the device in a single host-to-device copy per step (never per layer).
/// Attention reads the paged cache by whole blocks: a decode row gathers its sequence's blocks
/// (padded to the batch's longest table with block 0, masked), so the index is one entry per
/// block rather than per (token, head) as <see cref="StepPlan"/>'s CPU gather uses.
/// </summary>
internal sealed class FusedStepPlan
{
    /// <summary>A chunk of more than one token: fresh (StartPosition 0, attends only to itself) or continuing a cached context.</summary>
    public sealed record PrefillChunk(int FirstRow, int NumTokens, int StartPosition, int NumBlocks, int BlocksOffset);

    private long[] packed = [];

    public int NumTokens { get; private set; }
    public int NumChunks { get; private set; }
    public int NumDecodes { get; private set; }

    /// <summary>Blocks each decode row gathers (the longest decode context, rounded up to whole blocks).</summary>
    public int DecodeBlocks { get; private set; }
    public int BlockSize { get; private set; }
    public List<PrefillChunk> Prefill { get; } = [];
    public bool IsAllDecode => Prefill.Count == 0;

    /// <summary>True when every chunk is one token, so the last-token rows are all rows in order.</summary>
    public bool LastRowsAreAllRows => NumTokens == NumChunks;

    // Offsets of the segments in the packed array.
    private int tokensAt, positionsAt, slotsAt, lastRowsAt, decodeRowsAt, decodeBlocksAt, decodeLengthsAt, prefillBlocksAt;

    public static FusedStepPlan Build(IReadOnlyList<SequenceChunk> batch, PagedKvCache cache, LlamaConfig config)
    {
        StepPlan.CheckBatch(batch, cache, config);
        var plan = new FusedStepPlan { NumChunks = batch.Count, BlockSize = cache.BlockSize };
        int total = 0, decodes = 0, maxDecodeEnd = 0, prefillBlocks = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            var chunk = batch[i];
            StepPlan.CheckChunk(chunk, i, config);
            // The fused path gathers whole blocks up front, so their ids are checked here (the reference path checks each slot it writes).
            string where = $"batch[{i}]";
            int blocksNeeded = (chunk.EndPosition + cache.BlockSize - 1) / cache.BlockSize;
            if (blocksNeeded > chunk.BlockTable.Count)
                throw new ArgumentException($"{where}: position {chunk.EndPosition - 1} needs block index {blocksNeeded - 1}, but the block table has only {chunk.BlockTable.Count} blocks");
            for (int b = 0; b < blocksNeeded; b++)
                if ((uint)chunk.BlockTable[b] >= (uint)cache.NumBlocks)
                    throw new ArgumentException($"{where}: block table entry {b} is block {chunk.BlockTable[b]}, outside the cache's {cache.NumBlocks} blocks");
            total += chunk.TokenIds.Count;
            if (chunk.TokenIds.Count == 1)
            {
                decodes++;
                maxDecodeEnd = Math.Max(maxDecodeEnd, chunk.EndPosition);
            }
            else if (chunk.StartPosition > 0)
            {
                prefillBlocks += blocksNeeded;
            }
        }
        plan.NumTokens = total;
        plan.NumDecodes = decodes;
        plan.DecodeBlocks = (maxDecodeEnd + cache.BlockSize - 1) / cache.BlockSize;

        plan.tokensAt = 0;
        plan.positionsAt = total;
        plan.slotsAt = 2 * total;
        plan.lastRowsAt = 3 * total;
        plan.decodeRowsAt = plan.lastRowsAt + batch.Count;
        plan.decodeBlocksAt = plan.decodeRowsAt + decodes;
        plan.decodeLengthsAt = plan.decodeBlocksAt + decodes * plan.DecodeBlocks;
        plan.prefillBlocksAt = plan.decodeLengthsAt + decodes;
        var p = plan.packed = new long[plan.prefillBlocksAt + prefillBlocks];

        int row = 0, d = 0, pb = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            var chunk = batch[i];
            var table = chunk.BlockTable;
            int first = row;
            for (int t = 0; t < chunk.TokenIds.Count; t++, row++)
            {
                int pos = chunk.StartPosition + t;
                p[plan.tokensAt + row] = chunk.TokenIds[t];
                p[plan.positionsAt + row] = pos;
                p[plan.slotsAt + row] = (long)table[pos / cache.BlockSize] * cache.BlockSize + pos % cache.BlockSize;
            }
            p[plan.lastRowsAt + i] = row - 1;
            int blocks = (chunk.EndPosition + cache.BlockSize - 1) / cache.BlockSize;
            if (chunk.TokenIds.Count == 1)
            {
                p[plan.decodeRowsAt + d] = first;
                int at = plan.decodeBlocksAt + d * plan.DecodeBlocks;
                for (int b = 0; b < blocks; b++) p[at + b] = table[b]; // the padding stays block 0, masked out
                p[plan.decodeLengthsAt + d] = chunk.EndPosition;
                d++;
            }
            else
            {
                int offset = chunk.StartPosition > 0 ? pb : -1;
                if (chunk.StartPosition > 0)
                    for (int b = 0; b < blocks; b++) p[plan.prefillBlocksAt + pb++] = table[b];
                plan.Prefill.Add(new PrefillChunk(first, chunk.TokenIds.Count, chunk.StartPosition, blocks, offset));
            }
        }
        return plan;
    }

    /// <summary>The step's index tensors on <paramref name="device"/>: views into one uploaded array.</summary>
    public sealed record Tensors(Tensor Tokens, Tensor Positions, Tensor WriteSlots, Tensor LastRows,
        Tensor DecodeRows, Tensor DecodeBlocks, Tensor DecodeLengths, Tensor PrefillBlocks);

    public Tensors Upload(Device device)
    {
        var all = tensor(packed, device: device);
        Tensor Slice(int at, int count) => all.narrow(0, at, count);
        return new Tensors(
            Slice(tokensAt, NumTokens), Slice(positionsAt, NumTokens), Slice(slotsAt, NumTokens), Slice(lastRowsAt, NumChunks),
            Slice(decodeRowsAt, NumDecodes), Slice(decodeBlocksAt, NumDecodes * DecodeBlocks), Slice(decodeLengthsAt, NumDecodes),
            Slice(prefillBlocksAt, packed.Length - prefillBlocksAt));
    }
}
