namespace OServe.Models.Llama;

/// <summary>
/// Shape of a Llama-family decoder. <see cref="HeadDim"/> is usually Dim / NumHeads but is kept
/// separate because some checkpoints (and tensor-parallel shards) decouple the two.
/// </summary>
public sealed record LlamaConfig
{
    public required int Dim { get; init; }
    public required int HiddenDim { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int VocabSize { get; init; }
    public required int MaxSeqLen { get; init; }
    public int HeadDim { get; init; }
    public double RopeTheta { get; init; } = 10000.0;
    public double NormEps { get; init; } = 1e-5;

    /// <summary>True when the output classifier reuses the token embedding (llama2.c positive vocab_size, HF tie_word_embeddings).</summary>
    public bool TieWordEmbeddings { get; init; }

    public int EffectiveHeadDim => HeadDim > 0 ? HeadDim : Dim / NumHeads;
    public int QueryDim => NumHeads * EffectiveHeadDim;
    public int KvDim => NumKvHeads * EffectiveHeadDim;

    /// <summary>Throws with the offending field named when the shape cannot describe a working model.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string message)
        {
            if (!ok) throw new InvalidDataException($"{source}: {message}");
        }

        Require(Dim > 0, $"dim must be positive, got {Dim}");
        Require(HiddenDim > 0, $"hidden_dim must be positive, got {HiddenDim}");
        Require(NumLayers > 0, $"n_layers must be positive, got {NumLayers}");
        Require(NumHeads > 0, $"n_heads must be positive, got {NumHeads}");
        Require(NumKvHeads > 0 && NumHeads % NumKvHeads == 0,
            $"n_kv_heads ({NumKvHeads}) must be positive and divide n_heads ({NumHeads})");
        Require(HeadDim > 0 || Dim % NumHeads == 0, $"dim ({Dim}) must be divisible by n_heads ({NumHeads})");
        Require(EffectiveHeadDim % 2 == 0, $"head dim ({EffectiveHeadDim}) must be even for rotary embeddings");
        Require(VocabSize > 0, $"vocab_size must be positive, got {VocabSize}");
        Require(MaxSeqLen > 0, $"max sequence length must be positive, got {MaxSeqLen}");
        Require(RopeTheta > 0, $"rope_theta must be positive, got {RopeTheta}");
        Require(NormEps > 0, $"rms_norm_eps must be positive, got {NormEps}");
    }

    /// <summary>Parameters in the model, counting a tied classifier once.</summary>
    public long ParameterCount
    {
        get
        {
            long perLayer = 2L * Dim + (long)Dim * (QueryDim + 2L * KvDim) + (long)QueryDim * Dim + 3L * Dim * HiddenDim;
            long embed = (long)VocabSize * Dim;
            return NumLayers * perLayer + embed + Dim + (TieWordEmbeddings ? 0 : embed);
        }
    }

    /// <summary>Parameters read from memory by one decode step: every layer, the final norm and the classifier (the embedding is a row gather).</summary>
    public long ParametersReadPerStep =>
        NumLayers * (2L * Dim + (long)Dim * (QueryDim + 2L * KvDim) + (long)QueryDim * Dim + 3L * Dim * HiddenDim)
        + Dim + (long)VocabSize * Dim;
}
