using OServe.Models.Llama;
using OServe.Models.Tokenization;

namespace OServe.Models;

/// <summary>A model ready to serve: weights on a device plus the tokenizer that goes with them.</summary>
public sealed class LoadedModel(LlamaModel model, ITokenizer tokenizer, string name, string description, bool isRandom) : IDisposable
{
    public LlamaModel Model { get; } = model;
    public ITokenizer Tokenizer { get; } = tokenizer;
    public LlamaConfig Config => Model.Config;

    /// <summary>The id clients use (OpenAI "model" field).</summary>
    public string Name { get; } = name;

    /// <summary>One line for logs and /v1/models: origin, shape, dtype; says so when weights are random.</summary>
    public string Description { get; } = description;

    /// <summary>True when the weights are random (built-in model): output is gibberish by design.</summary>
    public bool IsRandom { get; } = isRandom;

    public void Dispose() => Model.Dispose();
}
