using System.Collections.Immutable;
using OServe.Engine.Scheduling;
using OServe.Models.Kv;
using static TorchSharp.torch;

namespace OServe.Engine.Execution;

/// <summary>
/// Turns one step's logits into the logprobs its requests asked for: the sampled token's, and for
/// prompt chunks every prompt token's that a row predicts. Log-softmax, the chosen ids' values and
/// the top-k are taken on the logits' device for just those rows; only small arrays come to the host.
/// </summary>
internal static class LogprobReport
{
    /// <param name="rows">The forward's logits: <see cref="SequenceChunk.NumLogitRows"/> rows per chunk, in batch order.</param>
    public static void Fill(Tensor rows, IReadOnlyList<SequenceChunk> batch, ImmutableArray<ScheduledChunk> chunks,
        ReadOnlySpan<int> sampled, StepLogprobs logprobs)
    {
        var picked = new List<long>();
        var targets = new List<long>();
        var owners = new List<(int Chunk, int Position, int NumTop)>();
        int maxTop = 0;
        void Want(long row, int target, int chunk, int position, int numTop)
        {
            picked.Add(row);
            targets.Add(target);
            owners.Add((chunk, position, numTop));
            maxTop = Math.Max(maxTop, numTop);
        }

        long first = 0;
        for (int k = 0; k < chunks.Length; k++)
        {
            var chunk = chunks[k];
            var seq = chunk.Sequence;
            int numRows = batch[k].NumLogitRows;
            if (batch[k].ReturnsAllLogits && seq.Sampling.PromptLogprobs is { } promptTop)
            {
                // Row r is position StartPosition + r and predicts the token after it.
                for (int r = 0; r < numRows; r++)
                {
                    int target = chunk.StartPosition + r + 1;
                    if (target < seq.NumPromptTokens)
                        Want(first + r, seq.TokenAt(target), k, target, promptTop);
                }
            }
            if (chunk.SamplesToken && sampled[k] >= 0 && seq.Sampling.Logprobs is { } sampledTop)
                Want(first + numRows - 1, sampled[k], k, -1, sampledTop);
            first += numRows;
        }
        if (picked.Count == 0)
            return;

        using var scope = NewDisposeScope();
        var device = rows.device;
        var logSoftmax = rows.index_select(0, tensor(picked.ToArray(), device: device)).log_softmax(-1);
        var chosen = logSoftmax.gather(1, tensor(targets.ToArray(), device: device).unsqueeze(1)).squeeze(1).cpu().data<float>().ToArray();
        float[] topValues = [];
        long[] topIds = [];
        if (maxTop > 0)
        {
            var (values, indices) = logSoftmax.topk(Math.Min(maxTop, (int)rows.shape[1]), dim: -1);
            topValues = values.cpu().data<float>().ToArray();
            topIds = indices.cpu().data<long>().ToArray();
        }
        int width = topValues.Length / picked.Count;
        for (int i = 0; i < picked.Count; i++)
        {
            var (k, position, numTop) = owners[i];
            var top = new TopLogprob[Math.Min(numTop, width)];
            for (int j = 0; j < top.Length; j++)
                top[j] = new TopLogprob((int)topIds[i * width + j], topValues[i * width + j]);
            var entry = new TokenLogprob((int)targets[i], chosen[i], top);
            if (position < 0)
                logprobs.Sampled[k] = entry;
            else
                (logprobs.Prompt[k] ??= []).Add((position, entry));
        }
    }
}
