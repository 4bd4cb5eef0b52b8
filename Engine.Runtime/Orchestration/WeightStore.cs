using OServe.Models.Llama;
using OServe.Models.Loading;

namespace OServe.Engine.Orchestration;

/// <summary>
/// Where a model's weights rest when no device holds them: the cold path of a switch (a reload).
/// Each <see cref="Open"/> reads anew, as a replica built from scratch would.
/// </summary>
public interface IWeightStore
{
    /// <summary>For logs and reports (a path, or "random weights (seed 1234)").</summary>
    string Origin { get; }

    /// <summary>Opens the weights; the caller disposes the source when it is <see cref="IDisposable"/>.</summary>
    IWeightSource Open();
}

/// <summary>A llama2.c checkpoint (.bin) or a directory of safetensors files on disk.</summary>
public sealed class CheckpointWeightStore(string path) : IWeightStore
{
    public string Origin => path;

    public IWeightSource Open()
    {
        if (Directory.Exists(path)) return SafetensorsWeightSource.OpenDirectory(path);
        if (path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)) return Llama2cCheckpoint.Read(path).Weights;
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            return SafetensorsWeightSource.OpenDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        throw new InvalidDataException($"{path}: not a llama2.c .bin checkpoint or a safetensors directory");
    }
}

/// <summary>
/// The built-in model's "storage": its seeded random weights, generated again on each open
/// (deterministic, so a reloaded replica equals the others). No disk is read; the benchmark
/// writes the weights to a safetensors file to measure a real reload instead.
/// </summary>
public sealed class RandomWeightStore(LlamaConfig config, long seed) : IWeightStore
{
    public string Origin => $"random weights (seed {seed})";

    public IWeightSource Open() => RandomWeights.Create(config, seed);
}
