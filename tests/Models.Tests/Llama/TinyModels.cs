using OServe.Models.Llama;
using OServe.Models.Loading;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

internal static class TinyModels
{
    /// <summary>Grouped-query (8 heads, 2 KV heads), unshared classifier: exercises every weight path.</summary>
    public static readonly LlamaConfig Config = new()
    {
        Dim = 64, HiddenDim = 96, NumLayers = 2, NumHeads = 8, NumKvHeads = 2, VocabSize = 101, MaxSeqLen = 128, RopeTheta = 500.0,
    };

    public static LlamaModel Random(long seed = 7, ScalarType dtype = ScalarType.Float32, LlamaConfig? config = null, ForwardPath path = ForwardPath.Reference)
    {
        config ??= Config;
        using var weights = RandomWeights.Create(config, seed);
        // Larger-than-init weights so attention patterns are sharp and bugs show up as big differences.
        using var scaled = Scale(weights, config, 5f);
        return LlamaModel.Create(config, scaled, CPU, dtype, path);
    }

    private static InMemoryWeightSource Scale(InMemoryWeightSource source, LlamaConfig config, float factor) =>
        new(source.Origin, LlamaWeightNames.Expected(config).ToDictionary(
            e => e.Name,
            e => { using var t = source.Load(e.Name); return e.Shape.Length == 1 ? t.clone() : t.mul(factor); }));

    public static int[] Tokens(int count, int seed)
    {
        var rng = new System.Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(Config.VocabSize)).ToArray();
    }
}
