using OServe.Models.Kv;
using OServe.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn.functional;

namespace OServe.Models.Parallelism;

/// <summary>
/// The weights one device holds for a <see cref="ParallelLlama"/> (one tensor-parallel rank of
/// one pipeline stage) and the per-rank halves of each layer. Every method returns this rank's
/// partial result; the replica sums partials across the stage's ranks (the all-reduce). Like
/// <see cref="LlamaModel"/>, q/k/v and gate/up are fused into one matmul each and the named slices
/// are row views into the fused tensors.
/// </summary>
internal sealed class LlamaShard : IDisposable
{
    private sealed record Layer(Tensor AttentionNorm, Tensor Qkv, Tensor Output, Tensor FfnNorm, Tensor GateUp, Tensor Down);

    private readonly Layer[] layers;
    private readonly Tensor? embedding;
    private readonly Tensor? finalNorm;
    private readonly Tensor? classifier;
    private readonly RotaryEmbedding rotary;
    private readonly Dictionary<WeightSlice, Tensor> slices = [];
    private readonly List<Tensor> owned = [];
    private readonly float attentionScale;
    private readonly double normEps;
    private readonly int vocabSize;

    /// <param name="groups">the storage of each of <see cref="Groups"/>, on <paramref name="device"/> in <paramref name="dtype"/>, contiguous, filled; the shard owns them.</param>
    public LlamaShard(ParallelLayout layout, int index, PoolDevice device, ScalarType dtype, IReadOnlyList<(WeightSlice[] Parts, Tensor Storage)> groups)
    {
        Spec = layout.Shards[index];
        Device = device;
        var c = layout.Config;
        normEps = c.NormEps;
        vocabSize = c.VocabSize;
        var byName = new Dictionary<string, WeightSlice>(StringComparer.Ordinal);
        var storageOf = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (parts, storage) in groups)
        {
            var expected = GroupShape(layout, parts);
            if (!storage.shape.SequenceEqual(expected) || storage.dtype != dtype || !Collectives.SameDevice(storage.device, device.Torch) || !storage.is_contiguous())
                throw new InvalidOperationException(
                    $"shard {index} on {device.Id}: {string.Join(" + ", parts.Select(p => p.ToString()))} arrived as [{string.Join(", ", storage.shape)}] {storage.dtype} on {storage.device}, " +
                    $"expected contiguous [{string.Join(", ", expected)}] {dtype} on {device.Torch}");
            owned.Add(storage);
            long row = 0;
            foreach (var part in parts)
            {
                long rows = layout.ShapeOf(part)[0];
                slices[part] = parts.Length == 1 ? storage : storage.narrow(0, row, rows).DetachFromDisposeScope();
                byName[part.Name] = part;
                storageOf[part.Name] = storage;
                row += rows;
            }
        }

        Tensor Named(string name) => slices[byName[name]];
        Tensor Fused(string first) => storageOf[first];

        if (Spec.HasEmbedding) embedding = Named(LlamaWeightNames.Embedding);
        layers = new Layer[Spec.Layers.Count];
        for (int i = 0; i < layers.Length; i++)
        {
            int l = Spec.Layers.Start + i;
            layers[i] = new Layer(
                Named(LlamaWeightNames.AttentionNorm(l)),
                Fused(LlamaWeightNames.Query(l)),
                Named(LlamaWeightNames.Output(l)),
                Named(LlamaWeightNames.FfnNorm(l)),
                Fused(LlamaWeightNames.Gate(l)),
                Named(LlamaWeightNames.Down(l)));
        }
        if (Spec.HasHead)
        {
            finalNorm = Named(LlamaWeightNames.FinalNorm);
            classifier = c.TieWordEmbeddings ? Named(LlamaWeightNames.Embedding) : Named(LlamaWeightNames.Classifier);
        }
        rotary = new RotaryEmbedding(c.EffectiveHeadDim, c.MaxSeqLen, c.RopeTheta, device.Torch, dtype);
        attentionScale = 1.0f / MathF.Sqrt(c.EffectiveHeadDim);
        HeadDim = c.EffectiveHeadDim;
    }

    /// <summary>
    /// How shard <paramref name="index"/> stores its slices: q/k/v of a layer fused along rows (one
    /// matmul), gate/up likewise, every other slice alone. A loader fills each group's storage once.
    /// </summary>
    public static IReadOnlyList<WeightSlice[]> Groups(ParallelLayout layout, int index)
    {
        var slices = layout.SlicesOf(index);
        var byName = slices.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var fused = new List<WeightSlice[]>();
        var spec = layout.Shards[index];
        for (int l = spec.Layers.Start; l < spec.Layers.End; l++)
        {
            fused.Add([byName[LlamaWeightNames.Query(l)], byName[LlamaWeightNames.Key(l)], byName[LlamaWeightNames.Value(l)]]);
            fused.Add([byName[LlamaWeightNames.Gate(l)], byName[LlamaWeightNames.Up(l)]]);
        }
        var inFused = fused.SelectMany(g => g).ToHashSet();
        return [.. slices.Where(s => !inFused.Contains(s)).Select(s => new[] { s }), .. fused];
    }

    /// <summary>Shape of a group's storage: its parts stacked along rows.</summary>
    public static long[] GroupShape(ParallelLayout layout, WeightSlice[] parts)
    {
        var shape = (long[])layout.ShapeOf(parts[0]).Clone();
        shape[0] = parts.Sum(p => layout.ShapeOf(p)[0]);
        return shape;
    }

    public ShardSpec Spec { get; }
    public PoolDevice Device { get; }
    private int HeadDim { get; }

    /// <summary>Every slice this shard holds (fused pieces as views), by canonical name and range.</summary>
    public IReadOnlyDictionary<WeightSlice, Tensor> Slices => slices;

    public long Bytes => owned.Sum(t => t.NumberOfElements * t.ElementSize);

    /// <summary>Embedding rows of this rank's vocabulary range for <paramref name="tokens"/>; zero rows for tokens outside it.</summary>
    public Tensor EmbedPartial(Tensor tokens)
    {
        var v = Spec.Vocab;
        if (v.Count == vocabSize) return embedding!.index_select(0, tokens);
        var local = tokens.SubScalar(v.Start);
        var outside = local.LtScalar(0).logical_or_(local.GeScalar(v.Count));
        var rows = embedding!.index_select(0, local.ClampScalars(0, v.Count - 1));
        return rows.MaskedFillScalar_(outside.unsqueeze(1), 0);
    }

    /// <summary>This rank's heads attend (writing their K/V to <paramref name="cache"/>), then its columns of o_proj: a partial [T, dim].</summary>
    public Tensor AttentionPartial(int layer, Tensor x, StepInputs step, PagedKvCache cache)
    {
        var w = layers[layer - Spec.Layers.Start];
        int heads = Spec.Heads.Count, kvHeads = Spec.KvHeads.Count, hd = HeadDim;
        long n = x.shape[0];
        var qkv = Matmul(RmsNorm(x, w.AttentionNorm), w.Qkv).view(n, heads + 2 * kvHeads, hd);
        var qk = rotary.Apply(qkv.narrow(1, 0, heads + kvHeads), step.Cos, step.Sin);
        var q = qk.narrow(1, 0, heads).MulScalar_(attentionScale);
        var k = qk.narrow(1, heads, kvHeads);
        var v = qkv.narrow(1, heads + kvHeads, kvHeads);
        var attended = PagedAttention.Run(step.Plan, step.Tensors, cache, layer - Spec.Layers.Start, q, k, v, heads, hd);
        return Matmul(attended, w.Output);
    }

    /// <summary>SwiGLU over this rank's hidden units, then its columns of down_proj: a partial [T, dim].</summary>
    public Tensor MlpPartial(int layer, Tensor h)
    {
        var w = layers[layer - Spec.Layers.Start];
        long hidden = Spec.Hidden.Count;
        var gateUp = Matmul(RmsNorm(h, w.FfnNorm), w.GateUp);
        var act = silu(gateUp.narrow(1, 0, hidden)).mul_(gateUp.narrow(1, hidden, hidden));
        return Matmul(act, w.Down);
    }

    /// <summary>Logits of this rank's vocabulary range, [rows, vocab part], in the model dtype.</summary>
    public Tensor HeadPartial(Tensor last) => Matmul(RmsNorm(last, finalNorm!), classifier!);

    public (Tensor Cos, Tensor Sin) Rotary(Tensor positions) => rotary.At(positions);

    /// <summary>x [rows, in] · weight [out, in]ᵀ, with the same CPU decode kernel the single-device model uses.</summary>
    private static Tensor Matmul(Tensor x, Tensor weight) =>
        CpuDecodeMatmul.CanUse(x, weight) ? CpuDecodeMatmul.Multiply(x, weight) : linear(x, weight);

    private Tensor RmsNorm(Tensor x, Tensor weight)
    {
        var xf = x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);
        var normed = xf.RmsNormalized(normEps);
        return (normed.dtype == x.dtype ? normed : normed.to(x.dtype)).mul_(weight);
    }

    public void Dispose()
    {
        foreach (var t in slices.Values) t.Dispose();
        foreach (var t in owned) t.Dispose();
        rotary.Dispose();
    }
}

/// <summary>One step's index tensors on one device, shared by the shards on it.</summary>
internal sealed record StepInputs(StepPlan Plan, StepPlan.Tensors Tensors, Tensor Cos, Tensor Sin);
