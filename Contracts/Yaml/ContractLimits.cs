namespace OServe.Contracts.Yaml;

/// <summary>
/// Upper bounds on the figures a contract file may hold. Each is far above anything real (the
/// largest GPUs, clusters, models and traces of today, by orders of magnitude where cheap) and
/// low enough that the arithmetic done on them (GPU counts x nodes, layers x hidden x intermediate,
/// rates x durations) stays inside 64-bit integers and that a simulation of them fits in memory.
/// A value past a bound is reported like any bad value: file:line, field, the bound.
/// </summary>
public static class ContractLimits
{
    public const int MaxGpusPerNode = 1024;
    public const int MaxNodes = 4096;
    public const int MaxGpus = 65_536;
    public const int MaxGpuTypes = 256;
    public const double MaxMemoryGib = 16_384;
    public const double MaxTflops = 1e6;
    public const double MaxBandwidthGbps = 1e6;

    public const int MaxLayers = 1024;
    public const int MaxHidden = 1 << 20;
    public const int MaxIntermediate = 1 << 22;
    public const int MaxHeads = 8192;
    public const int MaxVocab = 1 << 24;
    public const int MaxContext = 1 << 24;

    public const double MaxRateRps = 1e5;
    public const double MaxSeconds = 1e9;
    public const double MaxSyntheticSeconds = 1e7;
    public const double MinTimeScale = 1e-6;
    public const double MaxTimeScale = 1e6;
    public const int MaxComponents = 64;
    public const double MaxTokens = 1 << 24;

    public const int MaxParallelism = 1024;
    public const int MaxNumSeqs = 1 << 20;
    public const int MaxBatchedTokens = 1 << 24;
    public const int MaxReplicas = MaxGpus;
    public const int MaxRequestTypes = 1024;
}
