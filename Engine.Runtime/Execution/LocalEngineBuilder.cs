using OServe.Engine.Scheduling;
using OServe.Models;
using static TorchSharp.torch;

namespace OServe.Engine.Execution;

/// <summary>vLLM-style engine arguments of one replica that serves a loaded model.</summary>
public sealed record EngineSettings
{
    public int MaxNumSeqs { get; init; } = 64;
    public int MaxNumBatchedTokens { get; init; } = 2048;
    public int BlockSize { get; init; } = 16;
    /// <summary>Null: the model's own context length.</summary>
    public int? MaxModelLen { get; init; }
    /// <summary>Memory given to the paged KV cache (--kv-cache-gib); capped at what MaxNumSeqs full-length requests need.</summary>
    public double KvCacheGib { get; init; } = 1.0;
    public int AdmissionCapacity { get; init; } = 1024;
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>Builds one replica's <see cref="AsyncEngine"/> over a model loaded in this process.</summary>
public static class LocalEngineBuilder
{
    public static SchedulerConfig SchedulerConfigFor(LoadedModel model, EngineSettings settings) =>
        SchedulerConfigFor(model.Config, model.Model.DType, settings);

    public static SchedulerConfig SchedulerConfigFor(OServe.Models.Llama.LlamaConfig c, ScalarType dtype, EngineSettings settings)
    {
        int maxModelLen = settings.MaxModelLen ?? c.MaxSeqLen;
        if (maxModelLen > c.MaxSeqLen)
            throw new ArgumentException($"max-model-len: {maxModelLen} exceeds the model's context length {c.MaxSeqLen}", "max-model-len");
        if (settings.BlockSize is < 1 or > 1024)
            throw new ArgumentException($"block-size: must be in 1..1024, got {settings.BlockSize}", "block-size");
        if (settings.KvCacheGib <= 0 || !double.IsFinite(settings.KvCacheGib))
            throw new ArgumentException($"kv-cache-gib: must be a positive number, got {settings.KvCacheGib}", "kv-cache-gib");
        long bytesPerToken = 2L * c.NumLayers * c.NumKvHeads * c.EffectiveHeadDim * ElementSize(dtype);
        long budgetBlocks = (long)(settings.KvCacheGib * (1L << 30)) / (bytesPerToken * settings.BlockSize);
        long neededBlocks = (long)settings.MaxNumSeqs * ((maxModelLen + settings.BlockSize - 1) / settings.BlockSize);
        int numBlocks = (int)Math.Min(Math.Min(budgetBlocks, neededBlocks), int.MaxValue);
        if ((long)numBlocks * settings.BlockSize < maxModelLen)
            throw new ArgumentException(
                $"kv-cache-gib: {settings.KvCacheGib} GiB holds {numBlocks * (long)settings.BlockSize} tokens, fewer than one request of " +
                $"max-model-len {maxModelLen} needs; give the cache more memory or lower --max-model-len", "kv-cache-gib");
        var config = new SchedulerConfig
        {
            MaxNumSeqs = settings.MaxNumSeqs,
            MaxNumBatchedTokens = settings.MaxNumBatchedTokens,
            BlockSize = settings.BlockSize,
            NumKvBlocks = numBlocks,
            MaxModelLen = maxModelLen,
        };
        config.Validate();
        return config;
    }

    public static AsyncEngine Create(LoadedModel model, EngineSettings settings, string? servedName = null, IClock? clock = null, IStepObserver? stepObserver = null)
    {
        var config = SchedulerConfigFor(model, settings);
        var runner = TorchModelRunner.Create(model.Model, config);
        var options = new AsyncEngineOptions
        {
            ModelName = servedName ?? model.Name,
            AdmissionCapacity = settings.AdmissionCapacity,
            RetryAfter = settings.RetryAfter,
            StepObserver = stepObserver,
        };
        return new AsyncEngine(options, config, runner, new ModelTokenizer(model.Tokenizer), clock);
    }

    private static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => 4,
    };
}
