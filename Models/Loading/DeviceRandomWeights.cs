using OServe.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Loading;

/// <summary>
/// Random Llama weights made tensor by tensor where they are needed: each tensor is drawn on the
/// target device in the target dtype from a generator seeded by (seed, name), so a 7B-shaped
/// model appears on a GPU in about a second without passing through host memory and the load
/// order does not matter. Same init as <see cref="RandomWeights"/> (std 0.02, output projections
/// scaled by depth, norms 1), but not the same numbers: generators differ between devices, and
/// this source is for measuring speed and shapes, never text.
/// </summary>
public sealed class DeviceRandomWeights(LlamaConfig config, long seed) : IDeviceWeightSource
{
    private readonly Dictionary<string, long[]> shapes = LlamaWeightNames.Expected(config).ToDictionary(e => e.Name, e => e.Shape, StringComparer.Ordinal);

    public string Origin => $"random weights drawn on the device (seed {seed})";

    public IReadOnlyCollection<string> Names => shapes.Keys;

    public Tensor Load(string name) => Load(name, CPU, ScalarType.Float32);

    public Tensor Load(string name, Device device, ScalarType dtype)
    {
        if (!shapes.TryGetValue(name, out var shape)) throw new InvalidDataException($"{Origin}: no tensor named '{name}'");
        if (shape.Length == 1) return ones(shape, dtype, device);
        float std = name.EndsWith(".o_proj.weight", StringComparison.Ordinal) || name.EndsWith(".down_proj.weight", StringComparison.Ordinal)
            ? 0.02f / MathF.Sqrt(2 * config.NumLayers)
            : 0.02f;
        long tensorSeed = seed ^ (long)NameHash(name);
        if (device.type == DeviceType.CUDA)
        {
            // TorchSharp 0.107's Generator is always a CPU generator (THSGenerator_new ignores the
            // device), which CUDA sampling refuses; the CUDA default generators are seeded instead.
            // Loading is one tensor at a time on one thread, so the seed holds for this draw.
            torch.cuda.manual_seed_all(tensorSeed);
            return randn(shape, dtype, device).MulScalar_(std);
        }
        using var generator = new Generator((ulong)tensorSeed, device);
        return randn(shape, dtype, device, generator: generator).MulScalar_(std);
    }

    /// <summary>FNV-1a: stable across processes, unlike string.GetHashCode.</summary>
    private static ulong NameHash(string name)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char ch in name)
        {
            hash ^= ch;
            hash *= 1099511628211UL;
        }
        return hash;
    }
}
