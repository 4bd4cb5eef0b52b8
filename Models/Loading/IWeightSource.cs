using TorchSharp;

namespace OServe.Models.Loading;

/// <summary>
/// Named tensors as a checkpoint stores them. <see cref="Load"/> returns a new CPU tensor that the
/// caller owns, so sources can be lazy (safetensors) or in memory (llama2.c, random init).
/// </summary>
public interface IWeightSource
{
    /// <summary>Where the weights come from, for error messages.</summary>
    string Origin { get; }

    IReadOnlyCollection<string> Names { get; }

    torch.Tensor Load(string name);
}

/// <summary>
/// A source that can make each tensor directly on the device and in the dtype the model wants
/// (random weights generated on a GPU), so a large model never passes through host memory.
/// </summary>
public interface IDeviceWeightSource : IWeightSource
{
    torch.Tensor Load(string name, torch.Device device, torch.ScalarType dtype);
}
