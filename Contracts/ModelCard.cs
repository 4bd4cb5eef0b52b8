using YamlDotNet.Serialization;

namespace OServe.Contracts;

public enum ModelArchitecture
{
    /// <summary>Llama family: RMSNorm, rotary, grouped-query attention, gated SwiGLU MLP.</summary>
    Llama,
    /// <summary>OPT: LayerNorm, learned positions, multi-head attention, two-matrix ReLU MLP, biases.</summary>
    Opt,
}

/// <summary>The shape of a model: everything the cost model and the memory plan need.</summary>
public sealed record ModelCard
{
    public required string Name { get; init; }
    public ModelArchitecture Architecture { get; init; } = ModelArchitecture.Llama;
    public required int Layers { get; init; }
    public required int Hidden { get; init; }
    public required int Intermediate { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int Vocab { get; init; }
    public int DtypeBytes { get; init; } = 2;
    public required int MaxContext { get; init; }
    public bool TiedEmbeddings { get; init; }
    /// <summary>Where the figures come from (a config file or paper).</summary>
    public string? Source { get; init; }

    [YamlIgnore]
    public int HeadDim => Hidden / Heads;

    /// <summary>Parameters per transformer layer (weights and biases, norms included).</summary>
    [YamlIgnore]
    public long ParamsPerLayer
    {
        get
        {
            long h = Hidden, q = (long)Heads * HeadDim, kv = (long)KvHeads * HeadDim, f = Intermediate;
            // Checked: a card past ContractLimits (built in code, not read) fails loudly instead of wrapping.
            return checked(Architecture switch
            {
                ModelArchitecture.Llama => h * q + 2 * h * kv + q * h + 3 * h * f + 2 * h,
                // OPT: q,k,v,o with biases; fc1/fc2 with biases; two LayerNorms with bias.
                _ => 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h,
            });
        }
    }

    [YamlIgnore]
    public long ParamCount
    {
        get
        {
            long embed = (long)Vocab * Hidden;
            long head = TiedEmbeddings ? 0 : embed;
            long extra = Architecture == ModelArchitecture.Opt ? (MaxContext + 2L) * Hidden + 2L * Hidden : Hidden;
            return checked(embed + head + extra + Layers * ParamsPerLayer);
        }
    }

    [YamlIgnore]
    public long WeightBytes => checked(ParamCount * DtypeBytes);

    /// <summary>K and V for one token over all layers: 2 * layers * kv_heads * head_dim * dtype bytes.</summary>
    [YamlIgnore]
    public long KvBytesPerToken => checked(2L * Layers * KvHeads * HeadDim * DtypeBytes);
}
