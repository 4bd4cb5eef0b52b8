using System.Diagnostics;
using OServe.Models.Kv;
using OServe.Models.Loading;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace OServe.Models.Llama;

/// <summary>Which implementation of the forward step a <see cref="LlamaModel"/> runs.</summary>
public enum ForwardPath
{
    /// <summary><see cref="Fused"/> on a CUDA device, <see cref="Reference"/> on the CPU.</summary>
    Auto,

    /// <summary>The CPU path: torch ops plus this project's AVX-512 decode kernels where they apply; also the reference the fused path is checked against.</summary>
    Reference,

    /// <summary>Few, large kernels for GPUs (<see cref="FusedForward"/>); runs on the CPU too, which is how it is tested without a GPU.</summary>
    Fused,
}

/// <summary>
/// Llama-family decoder for inference: RMSNorm, rotary embeddings, grouped-query attention,
/// SwiGLU. Weights live in <see cref="Weights"/> by canonical name in the [out, in] layout; q/k/v
/// and gate/up are stored fused (one matmul each) and the named entries are row views into them.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private sealed record Layer(Tensor AttentionNorm, Tensor Qkv, Tensor Output, Tensor FfnNorm, Tensor GateUp, Tensor Down);

    private readonly Layer[] layers;
    private readonly Tensor embedding;
    private readonly Tensor finalNorm;
    private readonly Tensor classifier;
    private readonly RotaryEmbedding rotary;
    private readonly Dictionary<string, Tensor> weights = new(StringComparer.Ordinal);
    private readonly List<Tensor> owned = [];
    private readonly float attentionScale;
    private readonly FusedForward? fused;

    private LlamaModel(LlamaConfig config, IWeightSource source, Device device, ScalarType dtype, ForwardPath path)
    {
        Config = config;
        Device = device;
        DType = dtype;
        Tensor Take(string name, long[] shape)
        {
            // A device-aware source (random weights) makes the tensor where it will live, in its dtype.
            using var raw = source is IDeviceWeightSource direct ? direct.Load(name, device, dtype) : source.Load(name);
            if (!raw.shape.SequenceEqual(shape))
                throw new InvalidDataException(
                    $"{source.Origin}: tensor '{name}' has shape [{string.Join(", ", raw.shape)}], the config expects [{string.Join(", ", shape)}]");
            var t = raw.to(dtype, device).contiguous().DetachFromDisposeScope();
            owned.Add(t);
            return t;
        }
        // q/k/v and gate/up are concatenated along the output rows so each is one matmul; the
        // named entries are row views of the fused tensor.
        Tensor Fused(params (string Name, long[] Shape)[] parts)
        {
            var pieces = parts.Select(p => Take(p.Name, p.Shape)).ToArray();
            if (pieces.Length == 1)
            {
                weights[parts[0].Name] = pieces[0];
                return pieces[0];
            }
            var fused = cat(pieces, 0).DetachFromDisposeScope();
            foreach (var p in pieces) { owned.Remove(p); p.Dispose(); }
            owned.Add(fused);
            long row = 0;
            foreach (var (name, shape) in parts)
            {
                weights[name] = fused.narrow(0, row, shape[0]).DetachFromDisposeScope();
                row += shape[0];
            }
            return fused;
        }
        Tensor Named(string name, long[] shape) => weights[name] = Take(name, shape);

        var c = config;
        embedding = Named(LlamaWeightNames.Embedding, [c.VocabSize, c.Dim]);
        layers = new Layer[c.NumLayers];
        for (int l = 0; l < c.NumLayers; l++)
        {
            layers[l] = new Layer(
                Named(LlamaWeightNames.AttentionNorm(l), [c.Dim]),
                Fused((LlamaWeightNames.Query(l), [c.QueryDim, c.Dim]), (LlamaWeightNames.Key(l), [c.KvDim, c.Dim]), (LlamaWeightNames.Value(l), [c.KvDim, c.Dim])),
                Fused((LlamaWeightNames.Output(l), [c.Dim, c.QueryDim])),
                Named(LlamaWeightNames.FfnNorm(l), [c.Dim]),
                Fused((LlamaWeightNames.Gate(l), [c.HiddenDim, c.Dim]), (LlamaWeightNames.Up(l), [c.HiddenDim, c.Dim])),
                Fused((LlamaWeightNames.Down(l), [c.Dim, c.HiddenDim])));
        }
        finalNorm = Named(LlamaWeightNames.FinalNorm, [c.Dim]);
        classifier = c.TieWordEmbeddings ? embedding : Named(LlamaWeightNames.Classifier, [c.VocabSize, c.Dim]);
        rotary = new RotaryEmbedding(c.EffectiveHeadDim, c.MaxSeqLen, c.RopeTheta, device, dtype);
        attentionScale = 1.0f / MathF.Sqrt(c.EffectiveHeadDim);
        ForwardPath = path == ForwardPath.Auto ? (device.type == DeviceType.CUDA ? ForwardPath.Fused : ForwardPath.Reference) : path;
        if (ForwardPath == ForwardPath.Fused)
            fused = new FusedForward(c, device, dtype, embedding, classifier, finalNorm,
                layers.Select(l => (l.AttentionNorm, l.Qkv, l.Output, l.FfnNorm, l.GateUp, l.Down)).ToArray());
    }

    /// <summary>Builds a model on <paramref name="device"/> in <paramref name="dtype"/> (Float32, BFloat16 or Float16) from canonically named weights.</summary>
    public static LlamaModel Create(LlamaConfig config, IWeightSource source, Device device, ScalarType dtype, ForwardPath path = ForwardPath.Auto)
    {
        config.Validate(source.Origin);
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"model dtype must be Float32, BFloat16 or Float16, got {dtype}", nameof(dtype));
        if (device.type == DeviceType.CPU) NativeMemoryTuning.Apply();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return new LlamaModel(config, source, device, dtype, path);
    }

    public LlamaConfig Config { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    /// <summary>The forward implementation in use (never <see cref="ForwardPath.Auto"/>).</summary>
    public ForwardPath ForwardPath { get; }

    /// <summary>Host seconds the last <see cref="Forward"/> spent building and uploading its index data, before any kernel launch.</summary>
    public double LastPlanSeconds { get; private set; }

    /// <summary>Every parameter by canonical name (<see cref="LlamaWeightNames"/>), [out, in] layout, on <see cref="Device"/>.</summary>
    public IReadOnlyDictionary<string, Tensor> Weights => weights;

    /// <summary>
    /// Runs one step for a batch of chunks: writes the chunks' K/V into their cache slots, attends
    /// each chunk's queries over its whole cached context (causal inside the chunk), and returns
    /// float32 logits [rows, vocab]: one row for the last token of each chunk, or one per token for
    /// a chunk that <see cref="SequenceChunk.ReturnsAllLogits"/>, in batch order. All tokens of the
    /// batch go through each weight matmul together.
    /// </summary>
    public Tensor Forward(IReadOnlyList<SequenceChunk> batch, PagedKvCache cache)
    {
        // The fused path returns each chunk's last row only; a chunk that asks for every row
        // (prompt logprobs for echo) takes the reference path, which returns them.
        if (fused is not null && !batch.Any(c => c.ReturnsAllLogits))
        {
            var result = fused.Forward(batch, cache);
            LastPlanSeconds = fused.LastPlanSeconds;
            return result;
        }
        long start = Stopwatch.GetTimestamp();
        var plan = StepPlan.Build(batch, cache, Config);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var tensors = plan.ToTensors(Device);
        LastPlanSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var logits = Run(tensors.Tokens, tensors.Positions, tensors.OutputRows,
            (layer, q, k, v) => PagedAttention.Run(plan, tensors, cache, layer, q, k, v, Config.NumHeads, Config.EffectiveHeadDim));
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>Reference path without a cache: logits [tokens, vocab] (float32) for every position of one sequence.</summary>
    public Tensor ForwardFull(IReadOnlyList<int> tokens)
    {
        if (tokens.Count == 0) throw new ArgumentException("at least one token is needed", nameof(tokens));
        if (tokens.Count > Config.MaxSeqLen)
            throw new ArgumentException($"{tokens.Count} tokens exceed the model's maximum sequence length {Config.MaxSeqLen}", nameof(tokens));
        StepPlan.CheckTokens(tokens, Config.VocabSize, 0);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        int n = tokens.Count;
        var ids = tensor(tokens.Select(t => (long)t).ToArray(), device: Device);
        var positions = KeptScalars.Arange(n, ScalarType.Int64, Device);
        int[][] queryPositions = [Enumerable.Range(0, n).ToArray()];
        var mask = Attention.CausalMask(queryPositions, [n], n, n, Device);
        var logits = Run(ids, positions, outputRows: null, (_, q, k, v) =>
            Attention.Attend(q.unsqueeze(0), k.permute(1, 0, 2).unsqueeze(0), v.permute(1, 0, 2).unsqueeze(0), mask).squeeze(0));
        return logits.MoveToOuterDisposeScope();
    }

    private delegate Tensor AttentionStep(int layer, Tensor q, Tensor k, Tensor v);

    /// <param name="outputRows">rows whose logits are wanted; null for all.</param>
    /// <param name="attend">q [T, heads, hd] (scaled, rotated), k/v [T, kvHeads, hd] -> [T, heads*hd].</param>
    private Tensor Run(Tensor tokens, Tensor positions, Tensor? outputRows, AttentionStep attend)
    {
        var c = Config;
        int hd = c.EffectiveHeadDim;
        long n = tokens.shape[0];
        var x = embedding.index_select(0, tokens);
        var (cos, sin) = rotary.At(positions);
        for (int l = 0; l < layers.Length; l++)
        {
            // Per-layer scope: a long prefill must not keep every layer's activations alive.
            using var layerScope = NewDisposeScope();
            var layer = layers[l];
            var qkv = Matmul(RmsNorm(x, layer.AttentionNorm), layer.Qkv).view(n, c.NumHeads + 2 * c.NumKvHeads, hd);
            var qk = rotary.Apply(qkv.narrow(1, 0, c.NumHeads + c.NumKvHeads), cos, sin);
            var q = qk.narrow(1, 0, c.NumHeads).MulScalar_(attentionScale);
            var k = qk.narrow(1, c.NumHeads, c.NumKvHeads);
            var v = qkv.narrow(1, c.NumHeads + c.NumKvHeads, c.NumKvHeads);
            var attended = attend(l, q, k, v);
            var h = x.Plus(Matmul(attended, layer.Output));
            var gateUp = Matmul(RmsNorm(h, layer.FfnNorm), layer.GateUp);
            var act = silu(gateUp.narrow(1, 0, c.HiddenDim)).mul_(gateUp.narrow(1, c.HiddenDim, c.HiddenDim));
            x = h.Plus_(Matmul(act, layer.Down)).MoveToOuterDisposeScope();
        }
        var last = outputRows is null ? x : x.index_select(0, outputRows);
        var normed = RmsNorm(last, finalNorm);
        return Matmul(normed, classifier).to(ScalarType.Float32);
    }

    /// <summary>x [rows, in] · weight [out, in]ᵀ.</summary>
    private static Tensor Matmul(Tensor x, Tensor weight) =>
        CpuDecodeMatmul.CanUse(x, weight) ? CpuDecodeMatmul.Multiply(x, weight) : linear(x, weight);

    private Tensor RmsNorm(Tensor x, Tensor weight)
    {
        var xf = x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        var normed = xf.RmsNormalized(Config.NormEps);
        return (normed.dtype == x.dtype ? normed : normed.to(x.dtype)).mul_(weight);
    }

    public void Dispose()
    {
        fused?.Dispose();
        foreach (var t in weights.Values) t.Dispose();
        foreach (var t in owned) t.Dispose();
        rotary.Dispose();
    }
}
