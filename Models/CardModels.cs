using OServe.Contracts;
using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Tokenization;
using TorchSharp;

namespace OServe.Models;

/// <summary>
/// Models of a planning card's exact shape with random weights (<c>--model-card Llama-2-7B
/// --random-weights</c>), so real sizes can be measured without downloading weights. The weights
/// are drawn on the target device (<see cref="DeviceRandomWeights"/>) and the tokenizer is GPT-2's
/// folded onto the card's vocabulary (<see cref="FoldedTokenizer"/>).
/// </summary>
public static class CardModels
{
    /// <param name="layers">fewer layers than the card (a stack of the card's layers, for per-layer timing); null keeps the card's.</param>
    /// <param name="maxSeqLen">a shorter context than the card's, to bound the rotary tables; null keeps the card's.</param>
    public static LlamaConfig ConfigOf(ModelCard card, int? layers = null, int? maxSeqLen = null)
    {
        if (card.Architecture != ModelArchitecture.Llama)
            throw new ArgumentException($"model card '{card.Name}': architecture {card.Architecture} has no engine implementation (only llama does)");
        if (layers is < 1) throw new ArgumentException($"layers: must be at least 1, got {layers}");
        if (maxSeqLen is < 1) throw new ArgumentException($"max sequence length: must be at least 1, got {maxSeqLen}");
        var config = new LlamaConfig
        {
            Dim = card.Hidden,
            HiddenDim = card.Intermediate,
            NumLayers = layers ?? card.Layers,
            NumHeads = card.Heads,
            NumKvHeads = card.KvHeads,
            VocabSize = card.Vocab,
            MaxSeqLen = maxSeqLen ?? card.MaxContext,
            TieWordEmbeddings = card.TiedEmbeddings,
        };
        config.Validate($"model card '{card.Name}'");
        return config;
    }

    public static LoadedModel CreateRandom(ModelCard card, torch.Device device, torch.ScalarType dtype, long seed,
        int? layers = null, int? maxSeqLen = null, ForwardPath path = ForwardPath.Auto) =>
        CreateRandom(card.Name, ConfigOf(card, layers, maxSeqLen), device, dtype, seed, path);

    /// <summary>A random-weight model of any Llama shape (e.g. one tensor-parallel rank's slice of a card).</summary>
    public static LoadedModel CreateRandom(string name, LlamaConfig config, torch.Device device, torch.ScalarType dtype, long seed, ForwardPath path = ForwardPath.Auto)
    {
        var tokenizer = new FoldedTokenizer(TokenizerLoader.Gpt2(), config.VocabSize);
        var model = LlamaModel.Create(config, new DeviceRandomWeights(config, seed), device, dtype, path);
        string description =
            $"{name} shape with RANDOM weights (seed {seed}; output is noise): {config.ParameterCount / 1e9:F2}B parameters, dim {config.Dim}, " +
            $"{config.NumLayers} layers, {config.NumHeads} heads ({config.NumKvHeads} KV), vocab {config.VocabSize}, {dtype} on {DeviceSelection.Describe(device)}, " +
            $"tokenizer {tokenizer.Name}";
        return new LoadedModel(model, tokenizer, name, description, isRandom: true);
    }
}
