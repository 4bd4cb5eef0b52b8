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
    /// <param name="ContextRows">Rows of the [slots * kvHeads, hd] cache view, ordered (kv head, position).</param>
    public sealed record PrefillChunk(int FirstRow, int NumTokens, int ContextLength, long[] ContextRows, int[] Positions)
    {
        /// <summary>A fresh prompt: its context is its own tokens, so causal attention needs no mask.</summary>
        public bool IsCausalOverItself => Positions[0] == 0 && ContextLength == NumTokens;
    }

    /// <param name="PrefillVisible">Per prefill chunk, bool [1, 1, Q, C], true where a query may see a key
    /// (scaled_dot_product_attention's sense); null for a chunk that is causal over itself. Built once
    /// per step, shared by every layer.</param>
    public sealed record Tensors(
        Tensor Tokens, Tensor Positions, Tensor OutputRows, Tensor WriteSlots,
        Tensor? DecodeRows, Tensor? DecodeSlots, Tensor? DecodeMask,
        Tensor[] PrefillSlots, Tensor?[] PrefillVisible);

    private long[] tokens = [];
    private long[] positions = [];
    private long[] writeSlots = [];
    private long[] lastRows = [];
    private long[] outputRows = [];
    private long[] decodeSlots = [];
    private int[] decodeContextLengths = [];
    private int[][] decodePositions = [];

    public List<int> Decode { get; } = [];

    /// <summary>Decode gather rows: per (sequence, kv head) a run of DecodeContext rows of the [slots * kvH, hd] cache view.</summary>
    public long[] DecodeRows => decodeSlots;

    public int[] DecodeContextLengths => decodeContextLengths;
    public List<PrefillChunk> Prefill { get; } = [];
    public int DecodeContext { get; private set; }
    public bool IsAllDecode => Prefill.Count == 0;

    public static StepPlan Build(IReadOnlyList<SequenceChunk> batch, PagedKvCache cache, LlamaConfig config)
    {
        CheckBatch(batch, cache, config);
        var plan = new StepPlan();
        int total = 0;
        for (int i = 0; i < batch.Count; i++)
        {
            CheckChunk(batch[i], i, config);
            total += batch[i].TokenIds.Count;
        }

        plan.tokens = new long[total];
        plan.positions = new long[total];
        plan.writeSlots = new long[total];
        plan.lastRows = new long[batch.Count];
        plan.outputRows = new long[batch.Sum(c => c.NumLogitRows)];
        int row = 0, output = 0;
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
            for (int r = row - chunk.NumLogitRows; r < row; r++) plan.outputRows[output++] = r;
            if (chunk.TokenIds.Count == 1)
            {
                plan.Decode.Add(i);
                plan.DecodeContext = Math.Max(plan.DecodeContext, chunk.EndPosition);
            }
            else
            {
                var slots = ContextRows(cache, chunk, i, chunk.EndPosition);
                var queryPositions = Enumerable.Range(chunk.StartPosition, chunk.TokenIds.Count).ToArray();
                plan.Prefill.Add(new PrefillChunk(first, chunk.TokenIds.Count, chunk.EndPosition, slots, queryPositions));
            }
        }

        // Decode contexts are padded to the longest; padding reads slot 0 and is masked out.
        long perSequence = (long)cache.NumKvHeads * plan.DecodeContext;
        plan.decodeSlots = new long[plan.Decode.Count * perSequence];
        plan.decodeContextLengths = new int[plan.Decode.Count];
        plan.decodePositions = new int[plan.Decode.Count][];
        for (int d = 0; d < plan.Decode.Count; d++)
        {
            var chunk = batch[plan.Decode[d]];
            var rows = ContextRows(cache, chunk, plan.Decode[d], plan.DecodeContext);
            Array.Copy(rows, 0, plan.decodeSlots, d * perSequence, rows.Length);
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
            tensor(outputRows, device: device),
            tensor(writeSlots, device: device),
            decodeRows, decodeSlotsT, decodeMask,
            Prefill.Select(p => tensor(p.ContextRows, device: device)).ToArray(),
            Prefill.Select(p => p.IsCausalOverItself ? null
                : Attention.CausalMask([p.Positions], [p.ContextLength], p.NumTokens, p.ContextLength, device).logical_not().unsqueeze(1)).ToArray());
    }

    /// <summary>A batch a step can run: not empty, and a cache laid out for this model. Shared with <see cref="FusedStepPlan"/>.</summary>
    internal static void CheckBatch(IReadOnlyList<SequenceChunk> batch, PagedKvCache cache, LlamaConfig config)
    {
        if (batch.Count == 0) throw new ArgumentException("the batch is empty", nameof(batch));
        if (cache.NumLayers != config.NumLayers || cache.NumKvHeads != config.NumKvHeads || cache.HeadDim != config.EffectiveHeadDim)
            throw new ArgumentException(
                $"KV cache shape (layers {cache.NumLayers}, kv heads {cache.NumKvHeads}, head dim {cache.HeadDim}) does not match the model " +
                $"(layers {config.NumLayers}, kv heads {config.NumKvHeads}, head dim {config.EffectiveHeadDim})", nameof(cache));
    }

    /// <summary>Chunk <paramref name="i"/> of a batch: some tokens, all in the vocabulary, at positions the model has. Shared with <see cref="FusedStepPlan"/>.</summary>
    internal static void CheckChunk(SequenceChunk chunk, int i, LlamaConfig config)
    {
        string where = $"batch[{i}]";
        if (chunk.TokenIds.Count == 0) throw new ArgumentException($"{where}: the chunk has no tokens");
        if (chunk.StartPosition < 0) throw new ArgumentException($"{where}: StartPosition {chunk.StartPosition} is negative");
        if (chunk.EndPosition > config.MaxSeqLen)
            throw new ArgumentException($"{where}: positions up to {chunk.EndPosition - 1} exceed the model's maximum sequence length {config.MaxSeqLen}");
        CheckTokens(chunk.TokenIds, config.VocabSize, i);
    }

    public static void CheckTokens(IReadOnlyList<int> tokenIds, int vocabSize, int batchIndex)
    {
        for (int t = 0; t < tokenIds.Count; t++)
        {
            if ((uint)tokenIds[t] >= (uint)vocabSize)
                throw new ArgumentException($"batch[{batchIndex}]: token {t} has id {tokenIds[t]}, outside the vocabulary of {vocabSize}");
        }
    }

    /// <summary>Gather rows for positions 0..paddedLength-1 of a chunk's context, kv-head major; positions past the chunk read row 0 (masked).</summary>
    private static long[] ContextRows(PagedKvCache cache, SequenceChunk chunk, int batchIndex, int paddedLength)
    {
        int heads = cache.NumKvHeads;
        var rows = new long[(long)heads * paddedLength];
        for (int p = 0; p < chunk.EndPosition; p++)
        {
            long first = Checked(cache, chunk.BlockTable, p, batchIndex) * heads;
            for (int h = 0; h < heads; h++) rows[(long)h * paddedLength + p] = first + h;
        }
        return rows;
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
