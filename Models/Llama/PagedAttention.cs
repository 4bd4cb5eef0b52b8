using OServe.Models.Kv;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Llama;

/// <summary>
/// Paged attention over one cache: writes the step's K/V into their slots, then attends each
/// chunk's queries over its cached context (the CPU decode kernel for decodes where it applies).
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
            var qp = q.narrow(0, p.FirstRow, p.NumTokens).unsqueeze(0);
            var op = Attention.Attend(qp, Gather(keyRows, t.PrefillSlots[i], 1, p.ContextLength),
                Gather(valueRows, t.PrefillSlots[i], 1, p.ContextLength), t.PrefillMasks[i]);
            output.narrow(0, p.FirstRow, p.NumTokens).copy_(op.squeeze(0));
        }
        return output;
    }
}
