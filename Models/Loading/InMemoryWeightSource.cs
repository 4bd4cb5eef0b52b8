using TorchSharp;

namespace OServe.Models.Loading;

/// <summary>Weights already in memory (llama2.c checkpoints, random init). Owns its tensors.</summary>
public sealed class InMemoryWeightSource(string origin, IReadOnlyDictionary<string, torch.Tensor> tensors) : IWeightSource, IDisposable
{
    public string Origin { get; } = origin;

    public IReadOnlyCollection<string> Names => tensors.Keys.ToArray();

    public torch.Tensor Load(string name) =>
        tensors.TryGetValue(name, out var t)
            ? t.alias()
            : throw new InvalidDataException($"{Origin}: no tensor named '{name}'");

    public void Dispose()
    {
        foreach (var t in tensors.Values) t.Dispose();
    }
}
