using OServe.Models.Llama;
using OServe.Models.Loading;
using TorchSharp;

namespace OServe.Models.Parallelism;

/// <summary>A loaded single-device model's weights as an <see cref="IWeightSource"/>, to shard them without going back to disk.</summary>
public sealed class ModelWeightSource(LlamaModel model) : IWeightSource
{
    public string Origin => $"weights of a loaded model on {model.Device}";

    public IReadOnlyCollection<string> Names => model.Weights.Keys.ToArray();

    public torch.Tensor Load(string name)
    {
        if (!model.Weights.TryGetValue(name, out var t)) throw new InvalidDataException($"{Origin}: no tensor named '{name}'");
        return t.device_type == DeviceType.CPU ? t.alias() : t.cpu();
    }
}
