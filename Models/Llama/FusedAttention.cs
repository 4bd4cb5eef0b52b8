using OServe.Models.Kv;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace OServe.Models.Llama;

/// <summary>
/// Paged attention of <see cref="FusedForward"/> for one step: writes the step's K/V into their
/// cache slots, then attends with torch's scaled_dot_product_attention (flash or memory-efficient
/// kernels on a GPU). A fresh prompt attends to its own K/V (causal, no gather); decode rows and
/// prompt chunks that continue a cached context gather their sequences' cache blocks first (the
/// paged gather) and pass an additive mask. Decode rows fold each KV head's query group into the
/// query-length dimension, so grouped-query models attend without repeating K/V. Masks are built
/// once per step on the device and shared by every layer.
/// </summary>
internal sealed class FusedAttention
{
    private readonly FusedStepPlan plan;
    private readonly FusedStepPlan.Tensors t;
    private readonly PagedKvCache cache;
    private readonly int heads, kvHeads, hd, group;
    private readonly Tensor? decodeMask;
    private readonly Tensor?[] prefillMasks;

    /// <param name="heads">query heads of this model (or shard); the cache holds its KV heads.</param>
    public FusedAttention(FusedStepPlan plan, FusedStepPlan.Tensors tensors, PagedKvCache cache, int heads, ScalarType dtype)
    {
        this.plan = plan;
        t = tensors;
        this.cache = cache;
        this.heads = heads;
        kvHeads = cache.NumKvHeads;
        hd = cache.HeadDim;
        group = heads / kvHeads;
        int blockSize = plan.BlockSize;
        if (plan.NumDecodes > 0)
        {
            // Key j of decode row d is visible when j < its context length.
            long context = (long)plan.DecodeBlocks * blockSize;
            using var keys = KeptScalars.Arange(context, ScalarType.Int64, cache.Device).view(1, context);
            using var hidden = keys.ge(t.DecodeLengths.view(-1, 1));
            decodeMask = Additive(hidden, dtype).view(plan.NumDecodes, 1, 1, context);
        }
        prefillMasks = new Tensor?[plan.Prefill.Count];
        for (int i = 0; i < plan.Prefill.Count; i++)
        {
            var p = plan.Prefill[i];
            if (p.StartPosition == 0) continue; // causal over its own tokens: the kernel's is_causal
            long context = (long)p.NumBlocks * blockSize;
            using var keys = KeptScalars.Arange(context, ScalarType.Int64, cache.Device).view(1, context);
            using var hidden = keys.gt(t.Positions.narrow(0, p.FirstRow, p.NumTokens).view(-1, 1));
            prefillMasks[i] = Additive(hidden, dtype).view(1, 1, p.NumTokens, context);
        }
    }

    /// <param name="q">[T, heads, hd], rotated, not scaled (the kernel scales by 1/sqrt(hd)).</param>
    /// <param name="k">[T, kvHeads, hd], rotated.</param>
    /// <param name="v">[T, kvHeads, hd].</param>
    /// <returns>[T, heads * hd].</returns>
    public Tensor Run(int layer, Tensor q, Tensor k, Tensor v)
    {
        var keyCache = cache.Keys(layer);
        var valueCache = cache.Values(layer);
        keyCache.view(-1, kvHeads, hd).index_copy_(0, t.WriteSlots, k);
        valueCache.view(-1, kvHeads, hd).index_copy_(0, t.WriteSlots, v);
        if (plan.IsAllDecode) return Decode(q, keyCache, valueCache);

        var output = empty(plan.NumTokens, (long)heads * hd, q.dtype, q.device);
        if (plan.NumDecodes > 0)
            output.index_copy_(0, t.DecodeRows, Decode(q.index_select(0, t.DecodeRows), keyCache, valueCache));
        for (int i = 0; i < plan.Prefill.Count; i++)
        {
            var p = plan.Prefill[i];
            var qp = q.narrow(0, p.FirstRow, p.NumTokens).transpose(0, 1).unsqueeze(0); // [1, heads, n, hd]
            Tensor kp, vp;
            if (p.StartPosition == 0)
            {
                kp = k.narrow(0, p.FirstRow, p.NumTokens).transpose(0, 1).unsqueeze(0);
                vp = v.narrow(0, p.FirstRow, p.NumTokens).transpose(0, 1).unsqueeze(0);
            }
            else
            {
                var blocks = t.PrefillBlocks.narrow(0, p.BlocksOffset, p.NumBlocks);
                kp = Gather(keyCache, blocks, 1, p.NumBlocks);
                vp = Gather(valueCache, blocks, 1, p.NumBlocks);
            }
            if (group > 1)
            {
                kp = kp.repeat_interleave(group, 1);
                vp = vp.repeat_interleave(group, 1);
            }
            var o = scaled_dot_product_attention(qp, kp, vp, prefillMasks[i], 0, p.StartPosition == 0);
            output.narrow(0, p.FirstRow, p.NumTokens).copy_(o.squeeze(0).transpose(0, 1).reshape(p.NumTokens, (long)heads * hd));
        }
        return output;
    }

    /// <summary>qd [D, heads, hd] over the decode rows' gathered blocks; [D, heads * hd].</summary>
    private Tensor Decode(Tensor qd, Tensor keyCache, Tensor valueCache)
    {
        int d = plan.NumDecodes;
        var kd = Gather(keyCache, t.DecodeBlocks, d, plan.DecodeBlocks);
        var vd = Gather(valueCache, t.DecodeBlocks, d, plan.DecodeBlocks);
        // One query per sequence: the heads sharing a KV head become that head's query rows.
        var o = scaled_dot_product_attention(qd.view(d, kvHeads, group, hd), kd, vd, decodeMask);
        return o.reshape(d, (long)heads * hd);
    }

    /// <summary>[n * blocks] block ids -> [n, kvHeads, blocks * blockSize, hd] (a strided view of one contiguous gather).</summary>
    private Tensor Gather(Tensor layerCache, Tensor blockIds, int n, int blocks)
    {
        long context = (long)blocks * plan.BlockSize;
        return layerCache.view(cache.NumBlocks, -1).index_select(0, blockIds).view(n, context, kvHeads, hd).transpose(1, 2);
    }

    /// <summary>0 where visible, -inf where <paramref name="hidden"/>, in the attention dtype.</summary>
    private static Tensor Additive(Tensor hidden, ScalarType dtype) =>
        zeros(hidden.shape, dtype, hidden.device).MaskedFillScalar_(hidden, double.NegativeInfinity);
}
