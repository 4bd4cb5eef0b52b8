using OServe.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Loading;

/// <summary>Seeded random Llama weights (CPU generator, so the same seed gives the same weights on every device).</summary>
public static class RandomWeights
{
    public static InMemoryWeightSource Create(LlamaConfig config, long seed)
    {
        using var generator = new Generator((ulong)seed);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        // GPT-2-style init (std 0.02, output projections scaled by depth) keeps activations O(1)
        // through the layers, so random models exercise realistic numerics rather than overflow.
        float outputStd = 0.02f / MathF.Sqrt(2 * config.NumLayers);
        foreach (var (name, shape) in LlamaWeightNames.Expected(config))
        {
            tensors[name] = shape.Length == 1
                ? ones(shape).DetachFromDisposeScope()
                : randn(shape, generator: generator).MulScalar_(IsOutputProjection(name) ? outputStd : 0.02f).DetachFromDisposeScope();
        }
        return new InMemoryWeightSource($"random weights (seed {seed})", tensors);
    }

    private static bool IsOutputProjection(string name) =>
        name.EndsWith(".o_proj.weight", StringComparison.Ordinal) || name.EndsWith(".down_proj.weight", StringComparison.Ordinal);
}
