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
