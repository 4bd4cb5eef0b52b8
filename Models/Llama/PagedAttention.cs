using OServe.Models.Kv;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// Paged attention over one cache: writes the step's K/V into their slots, then attends each
/// chunk's queries over its cached context: prompt chunks with torch's scaled_dot_product_attention
/// (<see cref="PrefillAttention"/>), decodes with the CPU decode kernel where it applies.
/// The head counts come from the caller and the cache, so <see cref="LlamaModel"/> uses it with
/// the model's heads and a tensor-parallel shard with its own heads and KV-head slice.
/// </summary>
internal static class PagedAttention
{
    /// <param name="q">[T, heads, hd], scaled and rotated.</param>
    /// <param name="k">[T, kvHeads, hd], rotated; written to the cache.</param>
    /// <param name="v">[T, kvHeads, hd]; written to the cache.</param>
    /// <returns>[T, heads * hd].</returns>
    public static Tensor Run(StepPlan plan, StepPlan.Tensors t, PagedKvCache cache, int layer, Tensor q, Tensor k, Tensor v, int heads, int hd)
    {
        int kvHeads = cache.NumKvHeads;
        var keyCache = cache.Keys(layer).view(-1, kvHeads, hd);
        var valueCache = cache.Values(layer).view(-1, kvHeads, hd);
        keyCache.index_copy_(0, t.WriteSlots, k);
        valueCache.index_copy_(0, t.WriteSlots, v);

        // Rows of the [slots * kvHeads, hd] view, ordered (sequence, kv head, position): one gather
        // yields [B, kvHeads, C, hd], the layout the attention matmuls read.
        var keyRows = keyCache.view(-1, hd);
        var valueRows = valueCache.view(-1, hd);
        Tensor Gather(Tensor rows, Tensor index, int batch, int context) =>
            rows.index_select(0, index).view(batch, kvHeads, context, hd);

        Tensor DecodeAttention(Tensor qd)
        {
            int b = plan.Decode.Count;
            if (CpuDecodeAttention.CanUse(qd, cache))
                return CpuDecodeAttention.Attend(qd, cache.Keys(layer), cache.Values(layer), plan.DecodeRows, plan.DecodeContextLengths, plan.DecodeContext, kvHeads);
            return Attention.Attend(qd.unsqueeze(1), Gather(keyRows, t.DecodeSlots!, b, plan.DecodeContext),
                Gather(valueRows, t.DecodeSlots!, b, plan.DecodeContext), t.DecodeMask!).view(b, -1);
        }

        // q is [T, heads, hd]; when every chunk is a decode, row i is sequence i's query.
        if (plan.IsAllDecode) return DecodeAttention(q);

        var output = empty(q.shape[0], (long)heads * hd, q.dtype, q.device);
        if (plan.Decode.Count > 0)
            output.index_copy_(0, t.DecodeRows!, DecodeAttention(q.index_select(0, t.DecodeRows!)));
        for (int i = 0; i < plan.Prefill.Count; i++)
        {
            var p = plan.Prefill[i];
            var op = PrefillAttention(q.narrow(0, p.FirstRow, p.NumTokens), Gather(keyRows, t.PrefillSlots[i], 1, p.ContextLength),
                Gather(valueRows, t.PrefillSlots[i], 1, p.ContextLength), t.PrefillVisible[i], heads, hd);
            output.narrow(0, p.FirstRow, p.NumTokens).copy_(op);
        }
        return output;
    }

    /// <summary>
    /// One prompt chunk's attention over its context with torch's scaled_dot_product_attention, whose
    /// CPU kernel is flash attention: it never holds the [heads, Q, C] scores. Materialising them
    /// (<see cref="Attention.Attend"/>, in 8 MB query blocks) wrote and re-read tens of MB per layer of
    /// a long prompt, and on this VM that traffic took 3-5x longer in about half the processes than in
    /// the others (2048-token TTFT on one core 900-2100 vs 360-500 ms, the difference in softmax's exp:
    /// the time goes where the pages are first touched, not to any kernel code). A fresh prompt is
    /// causal over itself (no mask); a chunk that continues a cached context gets its boolean mask.
    /// </summary>
    /// <param name="q">[Q, heads, hd], scaled by 1/sqrt(hd) (the kernel scales by it too, so it is undone here).</param>
    /// <param name="k">[1, kvHeads, C, hd].</param>
    /// <param name="visible">bool [1, 1, Q, C], true where a query may see a key; null: causal over its own tokens (Q = C).</param>
    /// <returns>[Q, heads * hd].</returns>
    internal static Tensor PrefillAttention(Tensor q, Tensor k, Tensor v, Tensor? visible, int heads, int hd)
    {
        int group = heads / (int)k.shape[1];
        var qs = q.transpose(0, 1).unsqueeze(0).MulScalar(Math.Sqrt(hd)); // [1, heads, Q, hd]
        if (group > 1)
        {
            k = k.repeat_interleave(group, 1);
            v = v.repeat_interleave(group, 1);
        }
        var o = nn.functional.scaled_dot_product_attention(qs, k, v, visible, 0, visible is null); // [1, heads, Q, hd]
        return o.squeeze(0).transpose(0, 1).reshape(q.shape[0], (long)heads * hd);
    }
}
