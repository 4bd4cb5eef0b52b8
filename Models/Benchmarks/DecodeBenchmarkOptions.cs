using OServe.Models.Llama;
using TorchSharp;

namespace OServe.Models.Benchmarks;

/// <summary>
/// Shape of the benchmark model (defaults: a ~110M-parameter Llama, tied embeddings, 32k vocab;
/// or <see cref="Config"/>, e.g. a model card's shape) and how long to measure. Decode steps run on
/// top of <see cref="ContextTokens"/> prefilled tokens per sequence.
/// </summary>
public sealed record DecodeBenchmarkOptions
{
    public int Dim { get; init; } = 768;
    public int HiddenDim { get; init; } = 2048;
    public int NumLayers { get; init; } = 12;
    public int NumHeads { get; init; } = 12;
    public int NumKvHeads { get; init; } = 12;
    public int VocabSize { get; init; } = 32000;

    /// <summary>A full shape to use instead of the fields above (its MaxSeqLen is raised to what the run needs).</summary>
    public LlamaConfig? Config { get; init; }

    /// <summary>What the rows call the model (a card's name).</summary>
    public string ModelName { get; init; } = "random Llama";

    public torch.Device Device { get; init; } = torch.CPU;
    public int ContextTokens { get; init; } = 128;
    public int BlockSize { get; init; } = 16;
    public int WarmupSteps { get; init; } = 3;
    public int Steps { get; init; } = 20;
    public IReadOnlyList<int> BatchSizes { get; init; } = [1, 32];
    public IReadOnlyList<torch.ScalarType> DTypes { get; init; } = [torch.ScalarType.Float32, torch.ScalarType.BFloat16];

    /// <summary>Tokens of the one-prompt prefill to time (0: none).</summary>
    public int PrefillTokens { get; init; }

    /// <summary>Intra-op threads; defaults to the machine's logical cores.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Size of the buffer streamed to measure memory bandwidth; must dwarf the last-level cache.</summary>
    public long BandwidthBytes { get; init; } = 1L << 30;

    /// <summary>The device's nominal memory bandwidth, GB/s (H200: 4800); the bound then uses it rather than the measured figure.</summary>
    public double? NominalBandwidthGbps { get; init; }

    /// <summary>The dense matmul peak to rate prefill against, TFLOP/s (the H200's measured 780); default: measured here.</summary>
    public double? PeakTflops { get; init; }

    /// <summary>
    /// Runs the real engine loop (scheduler, runner, outputs) on the model and returns its own per-step
    /// host figures; the Engine supplies it (Models does not know the scheduler). Null: skipped.
    /// </summary>
    public Func<LlamaModel, HostOverhead>? EngineLoop { get; init; }

    public long Seed { get; init; } = 42;
}

/// <summary>The engine's own per-step timings at one batch size, medians in milliseconds.</summary>
/// <param name="HostMs">scheduling, preparing the batch, the index plan and upload, sampling bookkeeping, the update and outputs: everything but launching kernels and waiting for them.</param>
public sealed record HostOverhead(int Batch, int Steps, double StepMs, double HostMs, double ScheduleMs, double PrepareMs, double PlanMs, double SampleMs,
    double UpdateMs, double LaunchMs, double WaitMs);
