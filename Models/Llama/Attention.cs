using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// Grouped-query attention over padded batches. Queries of one sequence share the key/value heads
/// of their group without materialising repeated K/V: q is viewed as [B, kvHeads, group * Q, hd].
/// </summary>
internal static class Attention
{
    /// <param name="q">[B, Q, heads, hd], already scaled by 1/sqrt(hd).</param>
    /// <param name="k">[B, kvHeads, C, hd] (the layout the paged gather produces, so no re-layout copy is needed).</param>
    /// <param name="v">[B, kvHeads, C, hd].</param>
    /// <param name="masked">bool [B, Q, C], true where a query may not see a key (future or padding).</param>
    /// <returns>[B, Q, heads * hd] in q's dtype.</returns>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor masked)
    {
        long b = q.shape[0], nq = q.shape[1], heads = q.shape[2], c = k.shape[2];
        long perQuery = b * heads * c;
        if (nq < 2 || perQuery * nq <= MaxScoreElements) return AttendBlock(q, k, v, masked);
        // A long prompt's [heads, Q, C] scores would take tens of MB (1024 tokens, 8 heads: 32 MB
        // fp32 per layer, several times over): past glibc's mmap threshold each such buffer is
        // mapped afresh and page-faulted in, which made a 1024-token prefill on one core 4x slower
        // than an 896-token one. Query blocks keep the scores small; each query's softmax is its
        // own, so the result is the same.
        long block = Math.Max(1, MaxScoreElements / perQuery);
        var parts = new List<Tensor>();
        for (long start = 0; start < nq; start += block)
        {
            long n = Math.Min(block, nq - start);
            parts.Add(AttendBlock(q.narrow(1, start, n), k, v, masked.narrow(1, start, n)));
        }
        return cat(parts, 1);
    }

    /// <summary>Score elements (fp32) one attention call may hold at once: 2M, 8 MB.</summary>
    internal const long MaxScoreElements = 2L << 20;

    /// <summary>One call, all queries at once (what <see cref="Attend"/> does per query block).</summary>
    internal static Tensor AttendBlock(Tensor q, Tensor k, Tensor v, Tensor masked)
    {
        long b = q.shape[0], nq = q.shape[1], heads = q.shape[2], hd = q.shape[3];
        long kvHeads = k.shape[1], c = k.shape[2], group = heads / kvHeads;

        // [B, Q, kvH, G, hd] -> [B, kvH, G, Q, hd] -> [B, kvH, G*Q, hd]
        var qg = q.reshape(b, nq, kvHeads, group, hd).permute(0, 2, 3, 1, 4).reshape(b, kvHeads, group * nq, hd);
        var scores = matmul(qg, k.transpose(-1, -2)).view(b, kvHeads, group, nq, c);
        if (scores.dtype != ScalarType.Float32) scores = scores.to(ScalarType.Float32);
        scores.MaskedFillScalar_(masked.reshape(b, 1, 1, nq, c), double.NegativeInfinity);
        var probs = scores.softmax(-1).to(q.dtype).view(b, kvHeads, group * nq, c);
        var o = matmul(probs, v);                       // [B, kvH, G*Q, hd]
        return o.view(b, kvHeads, group, nq, hd).permute(0, 3, 1, 2, 4).reshape(b, nq, heads * hd);
    }

    /// <summary>Mask for queries at <paramref name="queryPositions"/> ([B][Q]) over keys 0..C-1 of a context of <paramref name="contextLengths"/>[b] keys.</summary>
    public static Tensor CausalMask(int[][] queryPositions, int[] contextLengths, int maxQueries, int maxContext, Device device)
    {
        int b = queryPositions.Length;
        var mask = new bool[(long)b * maxQueries * maxContext];
        for (int i = 0; i < b; i++)
        {
            for (int qi = 0; qi < maxQueries; qi++)
            {
                // Padded query rows see key 0 only, so their softmax stays finite; their output is discarded.
                int visible = qi < queryPositions[i].Length ? Math.Min(queryPositions[i][qi] + 1, contextLengths[i]) : 1;
                long row = ((long)i * maxQueries + qi) * maxContext;
                for (int j = visible; j < maxContext; j++) mask[row + j] = true;
            }
        }
        return tensor(mask, [b, maxQueries, maxContext], device: device);
    }
}
