using OServe.Models.Llama;

namespace OServe.Models.Parallelism;

/// <summary>[Start, Start + Count) of heads, layers, hidden units or vocabulary rows.</summary>
public readonly record struct IndexRange(int Start, int Count)
{
    public int End => Start + Count;

    public bool Contains(int index) => index >= Start && index < End;

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> near-equal contiguous parts of 0..total-1 (sizes differ by at most one).</summary>
    public static IndexRange Balanced(int total, int parts, int part)
    {
        int start = (int)((long)total * part / parts), end = (int)((long)total * (part + 1) / parts);
        return new IndexRange(start, end - start);
    }

    public override string ToString() => $"{Start}..{End}";
}

/// <summary>
/// What one device of a replica holds: pipeline stage <see cref="Stage"/> (a contiguous run of
/// layers) and tensor-parallel rank <see cref="Rank"/> within it (its query heads, KV heads, MLP
/// hidden units and, on the first and last stage, vocabulary rows).
/// </summary>
public sealed record ShardSpec(
    int Index, int Stage, int Rank, IndexRange Layers, IndexRange Heads, IndexRange KvHeads, IndexRange Hidden, IndexRange Vocab,
    bool HasEmbedding, bool HasHead);

/// <summary>
/// How a Llama model is cut into tp x pp shards (stage-major: shard s*tp + r is rank r of stage s,
/// matching the device order of a plan's ReplicaSpec).
/// Tensor parallelism: query heads split evenly (n_heads % tp == 0). KV heads split evenly when
/// tp divides n_kv_heads; when tp exceeds n_kv_heads (and is a multiple of it) each KV head is
/// replicated on tp / n_kv_heads consecutive ranks, the ranks whose query heads attend to it, as
/// vLLM does, so each rank still holds exactly one KV head and its cache slice. MLP hidden units
/// and vocabulary rows split into near-equal parts (no divisibility needed). Norm weights are
/// replicated on every rank that needs them. Pipeline parallelism: layers split into near-equal
/// contiguous stages; the first stage also holds the embedding, the last the final norm and the
/// classifier (with tied embeddings the last stage keeps its own copy of its embedding rows).
/// </summary>
public sealed class ParallelLayout
{
    private readonly ShardSpec[] shards;
    private readonly Dictionary<string, long[]> fullShapes;

    private ParallelLayout(LlamaConfig config, int tp, int pp)
    {
        Config = config;
        Tp = tp;
        Pp = pp;
        shards = new ShardSpec[tp * pp];
        fullShapes = LlamaWeightNames.Expected(config).ToDictionary(e => e.Name, e => e.Shape, StringComparer.Ordinal);
        int kvReplicas = Math.Max(1, tp / config.NumKvHeads);
        for (int s = 0; s < pp; s++)
        {
            for (int r = 0; r < tp; r++)
            {
                var kv = tp <= config.NumKvHeads ? IndexRange.Balanced(config.NumKvHeads, tp, r) : new IndexRange(r / kvReplicas, 1);
                shards[s * tp + r] = new ShardSpec(
                    s * tp + r, s, r,
                    IndexRange.Balanced(config.NumLayers, pp, s),
                    IndexRange.Balanced(config.NumHeads, tp, r),
                    kv,
                    IndexRange.Balanced(config.HiddenDim, tp, r),
                    IndexRange.Balanced(config.VocabSize, tp, r),
                    HasEmbedding: s == 0,
                    HasHead: s == pp - 1);
            }
        }
    }

    public static ParallelLayout Create(LlamaConfig config, int tp, int pp)
    {
        if (tp < 1) throw new ArgumentOutOfRangeException(nameof(tp), tp, "tensor-parallel degree must be at least 1");
        if (pp < 1) throw new ArgumentOutOfRangeException(nameof(pp), pp, "pipeline-parallel degree must be at least 1");
        if (config.NumHeads % tp != 0)
            throw new ArgumentException($"tp={tp} does not divide the model's {config.NumHeads} attention heads", nameof(tp));
        if (tp <= config.NumKvHeads ? config.NumKvHeads % tp != 0 : tp % config.NumKvHeads != 0)
            throw new ArgumentException(
                $"tp={tp} must divide the model's {config.NumKvHeads} KV heads or be a multiple of them (to replicate each KV head)", nameof(tp));
        if (tp > config.HiddenDim || tp > config.VocabSize)
            throw new ArgumentException($"tp={tp} exceeds the MLP width ({config.HiddenDim}) or the vocabulary ({config.VocabSize})", nameof(tp));
        if (pp > config.NumLayers)
            throw new ArgumentException($"pp={pp} exceeds the model's {config.NumLayers} layers: every pipeline stage needs at least one", nameof(pp));
        return new ParallelLayout(config, tp, pp);
    }

    public LlamaConfig Config { get; }
    public int Tp { get; }
    public int Pp { get; }
    public int NumShards => shards.Length;
    public IReadOnlyList<ShardSpec> Shards => shards;

    public ShardSpec Shard(int stage, int rank) => shards[stage * Tp + rank];

    /// <summary>KV heads each shard holds (the same on every shard).</summary>
    public int LocalKvHeads => shards[0].KvHeads.Count;

    /// <summary>Every weight slice shard <paramref name="index"/> holds, in load order.</summary>
    public IReadOnlyList<WeightSlice> SlicesOf(int index)
    {
        var s = shards[index];
        var c = Config;
        int hd = c.EffectiveHeadDim;
        var slices = new List<WeightSlice>();
        WeightSlice Rows(string name, IndexRange r, int scale = 1) => new(name, WeightSlice.SplitAxis(name), (long)r.Start * scale, (long)r.Count * scale);
        if (s.HasEmbedding) slices.Add(Rows(LlamaWeightNames.Embedding, s.Vocab));
        for (int l = s.Layers.Start; l < s.Layers.End; l++)
        {
            slices.Add(new WeightSlice(LlamaWeightNames.AttentionNorm(l), 0, 0, c.Dim));
            slices.Add(Rows(LlamaWeightNames.Query(l), s.Heads, hd));
            slices.Add(Rows(LlamaWeightNames.Key(l), s.KvHeads, hd));
            slices.Add(Rows(LlamaWeightNames.Value(l), s.KvHeads, hd));
            slices.Add(Rows(LlamaWeightNames.Output(l), s.Heads, hd));
            slices.Add(new WeightSlice(LlamaWeightNames.FfnNorm(l), 0, 0, c.Dim));
            slices.Add(Rows(LlamaWeightNames.Gate(l), s.Hidden));
            slices.Add(Rows(LlamaWeightNames.Up(l), s.Hidden));
            slices.Add(Rows(LlamaWeightNames.Down(l), s.Hidden));
        }
        if (s.HasHead)
        {
            slices.Add(new WeightSlice(LlamaWeightNames.FinalNorm, 0, 0, c.Dim));
            // Tied embeddings: a single-stage replica shares the embedding rows it already holds.
            if (!c.TieWordEmbeddings) slices.Add(Rows(LlamaWeightNames.Classifier, s.Vocab));
            else if (!s.HasEmbedding) slices.Add(Rows(LlamaWeightNames.Embedding, s.Vocab));
        }
        return slices;
    }

    /// <summary>Shape of a slice of a weight of this model.</summary>
    public long[] ShapeOf(WeightSlice slice)
    {
        var full = FullShape(slice.Name);
        var shape = (long[])full.Clone();
        shape[slice.Axis] = slice.Length;
        return shape;
    }

    public long[] FullShape(string name) =>
        fullShapes.TryGetValue(name, out var shape) ? shape : throw new ArgumentException($"'{name}' is not a weight of this model", nameof(name));

    public override string ToString() => $"tp={Tp} pp={Pp}";
}
