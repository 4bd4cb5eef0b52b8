using TorchSharp;

namespace OServe.Models.Parallelism;

/// <summary>Shape of the benchmark model (defaults: ~110M parameters, as the decode benchmark) and how often to repeat each switch.</summary>
public sealed record SwitchBenchmarkOptions
{
    public int Dim { get; init; } = 768;
    public int HiddenDim { get; init; } = 2048;
    public int NumLayers { get; init; } = 12;
    public int NumHeads { get; init; } = 12;
    public int NumKvHeads { get; init; } = 4;
    public int VocabSize { get; init; } = 32000;
    public torch.ScalarType DType { get; init; } = torch.ScalarType.Float32;

    /// <summary>Logical devices when there is no CUDA (at least 4: the switches use four).</summary>
    public int LogicalDevices { get; init; } = 4;

    /// <summary>Each switch is timed this many times, hot and cold alternating; the median is reported.</summary>
    public int Repeats { get; init; } = 3;

    /// <summary>Directory for the safetensors copy the cold reload reads; a fresh temp directory (deleted afterwards) when null.</summary>
    public string? WorkDirectory { get; init; }

    public long Seed { get; init; } = 42;
}
