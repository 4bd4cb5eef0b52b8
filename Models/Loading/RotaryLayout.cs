using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Loading;

/// <summary>
/// Converts q/k projection rows between the interleaved rotary layout (llama2.c, Meta: pairs
/// (2p, 2p+1) of a head rotate together) and the rotate-half layout the model uses (Hugging Face:
/// pairs (p, p + headDim/2)). Same permutation as HF's convert_llama_weights_to_hf.py.
/// </summary>
public static class RotaryLayout
{
    /// <param name="weight">[heads * headDim, in] in interleaved layout.</param>
    public static Tensor InterleavedToHalves(Tensor weight, int heads, int headDim)
    {
        long inFeatures = weight.shape[1];
        return weight.view(heads, headDim / 2, 2, inFeatures).transpose(1, 2).reshape(heads * (long)headDim, inFeatures);
    }

    /// <summary>Inverse of <see cref="InterleavedToHalves"/>.</summary>
    public static Tensor HalvesToInterleaved(Tensor weight, int heads, int headDim)
    {
        long inFeatures = weight.shape[1];
        return weight.view(heads, 2, headDim / 2, inFeatures).transpose(1, 2).reshape(heads * (long)headDim, inFeatures);
    }
}
