using TorchSharp;

namespace OServe.Models.Benchmarks;

/// <summary>
/// Shape of the benchmark model (defaults: a ~110M-parameter Llama, tied embeddings, 32k vocab)
/// and how long to measure. Decode steps run on top of <see cref="ContextTokens"/> prefilled tokens.
/// </summary>
public sealed record DecodeBenchmarkOptions
{
    public int Dim { get; init; } = 768;
    public int HiddenDim { get; init; } = 2048;
    public int NumLayers { get; init; } = 12;
    public int NumHeads { get; init; } = 12;
    public int NumKvHeads { get; init; } = 12;
    public int VocabSize { get; init; } = 32000;
    public int ContextTokens { get; init; } = 128;
    public int BlockSize { get; init; } = 16;
    public int WarmupSteps { get; init; } = 3;
    public int Steps { get; init; } = 20;
    public IReadOnlyList<int> BatchSizes { get; init; } = [1, 32];
    public IReadOnlyList<torch.ScalarType> DTypes { get; init; } = [torch.ScalarType.Float32, torch.ScalarType.BFloat16];

    /// <summary>Intra-op threads; defaults to the machine's logical cores.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Size of the buffer streamed to measure memory bandwidth; must dwarf the last-level cache.</summary>
    public long BandwidthBytes { get; init; } = 1L << 30;

    public long Seed { get; init; } = 42;
}
