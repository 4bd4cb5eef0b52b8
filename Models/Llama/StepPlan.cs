using OServe.Models.Kv;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// Host-side index arithmetic for one forward step, done once per step (not per layer): which
/// slot each new token writes, which slots each chunk reads, and the attention masks. Decode
/// chunks (one token) are attended together as one padded batch; longer chunks one by one.
/// </summary>
internal sealed class StepPlan
{
    public sealed record PrefillChunk(int FirstRow, int NumTokens, int ContextLength, long[] ContextSlots, int[] Positions);

    public sealed record Tensors(
        Tensor Tokens, Tensor Positions, Tensor LastTokenRows, Tensor WriteSlots,
        Tensor? DecodeRows, Tensor? DecodeSlots, Tensor? DecodeMask,
        Tensor[] PrefillSlots, Tensor[] PrefillMasks);

    private long[] tokens = [];
    private long[] positions = [];
    private long[] writeSlots = [];
    private long[] lastRows = [];
    private long[] decodeSlots = [];
    private int[] decodeContextLengths = [];
    private int[][] decodePositions = [];

    public List<int> Decode { get; } = [];
    public List<PrefillChunk> Prefill { get; } = [];
    public int DecodeContext { get; private set; }
    public bool IsAllDecode => Prefill.Count == 0;

    public static StepPlan Build(IReadOnlyList<SequenceChunk> batch, PagedKvCache cache, LlamaConfig config)
    {
        if (batch.Count == 0) throw new ArgumentException("the batch is empty", nameof(batch));
        if (cache.NumLayers != config.NumLayers || cache.NumKvHeads != config.NumKvHeads || cache.HeadDim != config.EffectiveHeadDim)
            throw new ArgumentException(
                $"KV cache shape (layers {cache.NumLayers}, kv heads {cache.NumKvHeads}, head dim {cache.HeadDim}) does not match the model " +
                $"(layers {config.NumLayers}, kv heads {config.NumKvHeads}, head dim {config.EffectiveHeadDim})", nameof(cache));

        var plan = new StepPlan();
        int total = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            var chunk = batch[i];
            string where = $"batch[{i}]";
            if (chunk.TokenIds.Count == 0) throw new ArgumentException($"{where}: the chunk has no tokens");
            if (chunk.StartPosition < 0) throw new ArgumentException($"{where}: StartPosition {chunk.StartPosition} is negative");
            if (chunk.EndPosition > config.MaxSeqLen)
                throw new ArgumentException($"{where}: positions up to {chunk.EndPosition - 1} exceed the model's maximum sequence length {config.MaxSeqLen}");
            CheckTokens(chunk.TokenIds, config.VocabSize, i);
            total += chunk.TokenIds.Count;
        }

        plan.tokens = new long[total];
        plan.positions = new long[total];
        plan.writeSlots = new long[total];
        plan.lastRows = new long[batch.Count];
        int row = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            var chunk = batch[i];
            int first = row;
            for (int t = 0; t < chunk.TokenIds.Count; t++, row++)
            {
                int pos = chunk.StartPosition + t;
                plan.tokens[row] = chunk.TokenIds[t];
                plan.positions[row] = pos;
                plan.writeSlots[row] = Checked(cache, chunk.BlockTable, pos, i);
            }
            plan.lastRows[i] = row - 1;
            if (chunk.TokenIds.Count == 1)
            {
                plan.Decode.Add(i);
                plan.DecodeContext = Math.Max(plan.DecodeContext, chunk.EndPosition);
            }
            else
            {
                var slots = ContextSlots(cache, chunk, i);
                var queryPositions = Enumerable.Range(chunk.StartPosition, chunk.TokenIds.Count).ToArray();
                plan.Prefill.Add(new PrefillChunk(first, chunk.TokenIds.Count, chunk.EndPosition, slots, queryPositions));
            }
        }

        // Decode contexts are padded to the longest; padding reads slot 0 and is masked out.
        plan.decodeSlots = new long[(long)plan.Decode.Count * plan.DecodeContext];
        plan.decodeContextLengths = new int[plan.Decode.Count];
        plan.decodePositions = new int[plan.Decode.Count][];
        for (int d = 0; d < plan.Decode.Count; d++)
        {
            var chunk = batch[plan.Decode[d]];
            var slots = ContextSlots(cache, chunk, plan.Decode[d]);
            Array.Copy(slots, 0, plan.decodeSlots, (long)d * plan.DecodeContext, slots.Length);
            plan.decodeContextLengths[d] = chunk.EndPosition;
            plan.decodePositions[d] = [chunk.StartPosition];
        }
        return plan;
    }

    public Tensors ToTensors(Device device)
    {
        Tensor? decodeRows = null, decodeSlotsT = null, decodeMask = null;
        if (Decode.Count > 0)
        {
            decodeRows = tensor(Decode.Select(i => lastRows[i]).ToArray(), device: device);
            decodeSlotsT = tensor(decodeSlots, device: device);
            decodeMask = Attention.CausalMask(decodePositions, decodeContextLengths, 1, DecodeContext, device);
        }
        return new Tensors(
            tensor(tokens, device: device),
            tensor(positions, device: device),
            tensor(lastRows, device: device),
            tensor(writeSlots, device: device),
            decodeRows, decodeSlotsT, decodeMask,
            Prefill.Select(p => tensor(p.ContextSlots, device: device)).ToArray(),
            Prefill.Select(p => Attention.CausalMask([p.Positions], [p.ContextLength], p.NumTokens, p.ContextLength, device)).ToArray());
    }

    public static void CheckTokens(IReadOnlyList<int> tokenIds, int vocabSize, int batchIndex)
    {
        for (int t = 0; t < tokenIds.Count; t++)
        {
            if ((uint)tokenIds[t] >= (uint)vocabSize)
                throw new ArgumentException($"batch[{batchIndex}]: token {t} has id {tokenIds[t]}, outside the vocabulary of {vocabSize}");
        }
    }

    private static long[] ContextSlots(PagedKvCache cache, SequenceChunk chunk, int batchIndex)
    {
        var slots = new long[chunk.EndPosition];
        for (int p = 0; p < slots.Length; p++) slots[p] = Checked(cache, chunk.BlockTable, p, batchIndex);
        return slots;
    }

    private static long Checked(PagedKvCache cache, IReadOnlyList<int> blockTable, int position, int batchIndex)
    {
        try
        {
            return cache.Slot(blockTable, position);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"batch[{batchIndex}]: {e.Message}", e);
        }
    }
}
