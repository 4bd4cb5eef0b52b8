using OServe.Models.Kv;
using OServe.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

/// <summary>Small test-side generation loops (the engine has the real one).</summary>
internal static class Greedy
{
    /// <summary>run.c's loop: feed one token at a time through the paged cache, stop when BOS is sampled or after <paramref name="steps"/> positions.</summary>
    public static List<int> Generate(LlamaModel model, IReadOnlyList<int> prompt, int steps, int blockSize = 16)
    {
        int blocks = (steps + blockSize - 1) / blockSize;
        using var cache = new PagedKvCache(model.Config, blocks, blockSize, model.Device, model.DType);
        var table = Enumerable.Range(0, blocks).ToArray();
        var generated = new List<int>();
        int token = prompt[0];
        for (int pos = 0; pos < steps; pos++)
        {
            using var logits = model.Forward([new SequenceChunk([token], pos, table)], cache);
            if (pos + 1 < prompt.Count)
            {
                token = prompt[pos + 1];
                continue;
            }
            int next = (int)logits[0].argmax().item<long>();
            if (next == 1) break;
            generated.Add(next);
            token = next;
        }
        return generated;
    }

    public static float[] Row(Tensor logits, long row) => logits[row].to(ScalarType.Float32).data<float>().ToArray();

    public static float MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = a.to(ScalarType.Float32).sub(b.to(ScalarType.Float32)).abs().max();
        return d.item<float>();
    }
}
