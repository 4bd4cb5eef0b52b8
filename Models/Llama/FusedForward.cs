using System.Diagnostics;
using OServe.Models.Kv;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace OServe.Models.Llama;

/// <summary>
/// The forward step of <see cref="LlamaModel"/> on a GPU (<see cref="ForwardPath.Fused"/>): the same
/// arithmetic as the reference path, in as few kernel launches as torch's operators allow, since
/// without CUDA graphs (TorchSharp 0.107 exposes none) every launch costs host time that a
/// batch-1 decode step cannot hide. Per layer: RMSNorm as one layer_norm over [x, -x] (whose mean
/// is zero, so it divides by the root mean square, in fp32 inside the kernel; [x, -x] is one
/// broadcast multiply by [1, -1]), the fused QKV
/// matmul, rotary embedding as one batched matmul by each token's rotation matrix (built once per
/// step), two cache writes and one attention kernel (<see cref="FusedAttention"/>), o_proj with
/// the residual add in the same addmm, RMSNorm, the fused gate/up matmul, SiLU-and-multiply, and
/// down_proj with its residual add. Index data reaches the device in one copy per step; nothing
/// inside the layer loop waits for the device.
/// </summary>
internal sealed class FusedForward : IDisposable
{
    /// <summary>One layer's weights as the fused step reads them; the matrices are the model's own tensors (views, not copies).</summary>
    public sealed record Layer(Tensor AttentionNorm2, Tensor Qkv, Tensor OutputT, Tensor FfnNorm2, Tensor GateUp, Tensor DownT);

    private readonly LlamaConfig config;
    private readonly Layer[] layers;
    private readonly Tensor embedding;
    private readonly Tensor finalNorm2;
    private readonly Tensor classifier;
    private readonly Tensor cos;
    private readonly Tensor sin;
    private readonly Tensor rotateHalf;
    private readonly Tensor signs;
    private readonly List<Tensor> owned = [];
    private readonly long[] normShape;
    private readonly Device device;
    private readonly ScalarType dtype;

    /// <param name="norms">per layer (attention norm, ffn norm) weights [dim]; <paramref name="finalNorm"/> likewise.</param>
    public FusedForward(LlamaConfig config, Device device, ScalarType dtype, Tensor embedding, Tensor classifier, Tensor finalNorm,
        IReadOnlyList<(Tensor AttentionNorm, Tensor Qkv, Tensor Output, Tensor FfnNorm, Tensor GateUp, Tensor Down)> weights)
    {
        this.config = config;
        this.device = device;
        this.dtype = dtype;
        this.embedding = embedding;
        this.classifier = classifier;
        normShape = [2L * config.Dim];
        finalNorm2 = Doubled(finalNorm);
        layers = weights.Select(w => new Layer(Doubled(w.AttentionNorm), w.Qkv, Own(w.Output.t()), Doubled(w.FfnNorm), w.GateUp, Own(w.Down.t()))).ToArray();
        (cos, sin) = RotaryEmbedding.Tables(config.EffectiveHeadDim, config.MaxSeqLen, config.RopeTheta, device, dtype);
        owned.Add(cos);
        owned.Add(sin);
        rotateHalf = Own(RotateHalfMatrix(config.EffectiveHeadDim, device, dtype));
        signs = Own(tensor(new[] { 1f, -1f }, [1, 2, 1]).to(dtype, device));
    }

    /// <summary>Seconds the last <see cref="Forward"/> spent on host index work (plan, upload) before launching kernels.</summary>
    public double LastPlanSeconds { get; private set; }

    public Tensor Forward(IReadOnlyList<SequenceChunk> batch, PagedKvCache cache)
    {
        long start = Stopwatch.GetTimestamp();
        var plan = FusedStepPlan.Build(batch, cache, config);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var t = plan.Upload(device);
        LastPlanSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

        var c = config;
        int hd = c.EffectiveHeadDim, heads = c.NumHeads, kvHeads = c.NumKvHeads;
        long n = plan.NumTokens;
        var rotation = Rotations(t.Positions);
        var attention = new FusedAttention(plan, t, cache, heads, dtype);
        var x = embedding.index_select(0, t.Tokens);
        for (int l = 0; l < layers.Length; l++)
        {
            // Per-layer scope: a long prefill must not keep every layer's activations alive.
            using var layerScope = NewDisposeScope();
            var w = layers[l];
            var qkv = linear(Norm(x, w.AttentionNorm2), w.Qkv).view(n, heads + 2 * kvHeads, hd);
            var qk = qkv.narrow(1, 0, heads + kvHeads).bmm(rotation);
            var attended = attention.Run(l, qk.narrow(1, 0, heads), qk.narrow(1, heads, kvHeads), qkv.narrow(1, heads + kvHeads, kvHeads));
            var h = x.addmm(attended, w.OutputT);
            var gateUp = linear(Norm(h, w.FfnNorm2), w.GateUp);
            var act = silu(gateUp.narrow(1, 0, c.HiddenDim)).mul_(gateUp.narrow(1, c.HiddenDim, c.HiddenDim));
            x = h.addmm(act, w.DownT).MoveToOuterDisposeScope();
        }
        var last = plan.LastRowsAreAllRows ? x : x.index_select(0, t.LastRows);
        return linear(Norm(last, finalNorm2), classifier).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>RMSNorm(x) * w: layer_norm of [x, -x] has mean 0 and variance mean(x^2); its first half is x * rsqrt(mean(x^2) + eps) * w.</summary>
    private Tensor Norm(Tensor x, Tensor doubledWeight) =>
        layer_norm(x.unsqueeze(1).mul(signs).view(-1, 2L * config.Dim), normShape, doubledWeight, null, config.NormEps).narrow(-1, 0, config.Dim);

    /// <summary>
    /// Per token t the matrix M_t with (x M_t)[j] = x[j] cos_t[j] + rotate_half(x)[j] sin_t[j], so a
    /// head's rotary embedding is one [heads, hd] x [hd, hd] product: [T, hd, hd].
    /// </summary>
    private Tensor Rotations(Tensor positions)
    {
        var cosRows = cos.index_select(0, positions);
        var sinRows = sin.index_select(0, positions);
        return cosRows.diag_embed().Plus_(rotateHalf.unsqueeze(0).mul(sinRows.unsqueeze(1)));
    }

    /// <summary>R with x R = rotate_half(x) = [-x2, x1] for x = [x1, x2] (halves of a head).</summary>
    internal static Tensor RotateHalfMatrix(int headDim, Device device, ScalarType dtype)
    {
        int half = headDim / 2;
        var r = new float[headDim * headDim];
        for (int j = 0; j < half; j++)
        {
            r[(j + half) * headDim + j] = -1f;       // output j < half takes -x[j + half]
            r[j * headDim + j + half] = 1f;          // output j + half takes x[j]
        }
        using var host = tensor(r, [headDim, headDim]);
        return host.to(dtype, device).DetachFromDisposeScope();
    }

    private Tensor Doubled(Tensor weight) => Own(cat([weight, weight], 0));

    private Tensor Own(Tensor t)
    {
        var detached = t.DetachFromDisposeScope();
        owned.Add(detached);
        return detached;
    }

    public void Dispose()
    {
        foreach (var t in owned) t.Dispose();
    }
}
