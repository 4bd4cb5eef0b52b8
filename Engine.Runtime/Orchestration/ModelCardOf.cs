using OServe.Contracts;
using OServe.Models.Llama;
using TorchSharp;

namespace OServe.Engine.Orchestration;

/// <summary>
/// The planning card of a loaded model, derived from its <see cref="LlamaConfig"/> so that plans
/// are checked against the shape actually served (never a hand-written copy that can drift).
/// </summary>
public static class ModelCardOf
{
    public static ModelCard Llama(LlamaConfig config, string name, torch.ScalarType dtype) => new()
    {
        Name = name,
        Architecture = ModelArchitecture.Llama,
        Layers = config.NumLayers,
        // The card derives head_dim as hidden / heads; a checkpoint with a decoupled head_dim
        // would be mis-sized, so it is refused rather than approximated.
        Hidden = config.HeadDim > 0 && config.HeadDim * config.NumHeads != config.Dim
            ? throw new NotSupportedException($"model '{name}': head_dim {config.HeadDim} x {config.NumHeads} heads != dim {config.Dim}; the planning card cannot describe it")
            : config.Dim,
        Intermediate = config.HiddenDim,
        Heads = config.NumHeads,
        KvHeads = config.NumKvHeads,
        Vocab = config.VocabSize,
        DtypeBytes = dtype == torch.ScalarType.Float32 ? 4 : 2,
        MaxContext = config.MaxSeqLen,
        TiedEmbeddings = config.TieWordEmbeddings,
        Source = "derived from the loaded model's config",
    };
}
