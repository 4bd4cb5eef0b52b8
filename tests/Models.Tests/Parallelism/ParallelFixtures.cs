using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Parallelism;
using OServe.Models.Tests.Llama;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Parallelism;

/// <summary>Small models, a step script that exercises prefill, decode and mixed batches, and greedy loops over any replica.</summary>
internal static class ParallelFixtures
{
    public const float Tolerance = 2e-4f;

    /// <summary>TinyModels' shape (8 heads, 2 KV heads, 2 layers, untied) with weights scaled up so differences show.</summary>
    public static LlamaModel Untied(long seed = 7) => TinyModels.Random(seed);

    /// <summary>Tied embeddings, 3 layers (uneven pipeline split), 4 KV heads, hidden and vocab that no tp divides.</summary>
    public static readonly LlamaConfig TiedConfig = new()
    {
        Dim = 64, HiddenDim = 90, NumLayers = 3, NumHeads = 8, NumKvHeads = 4, VocabSize = 97, MaxSeqLen = 128, TieWordEmbeddings = true,
    };

    /// <summary>16-wide heads (4 heads, 2 KV heads): the shape the CPU decode attention kernel takes.</summary>
    public static readonly LlamaConfig WideHeadConfig = new()
    {
        Dim = 64, HiddenDim = 128, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, VocabSize = 101, MaxSeqLen = 128,
    };

    public static LlamaModel WideHeads(long seed = 13) => TinyModels.Random(seed, config: WideHeadConfig);

    public static LlamaModel Tied(long seed = 11) => TinyModels.Random(seed, config: TiedConfig);

    public static ParallelLlama Shard(LlamaModel model, DevicePool pool, int tp, int pp, int firstDevice = 0, ParallelLlamaOptions? options = null) =>
        ParallelLlama.FromModel(model, pool.Devices.Skip(firstDevice).Take(tp * pp).ToArray(), tp, pp, options);

    /// <summary>
    /// Logits of every step of a fixed script over two sequences: chunked prefill, a mixed batch
    /// (one decode, one prefill chunk), then batched decodes. Rows of the result are the steps' outputs in order.
    /// </summary>
    public static Tensor Script(IPagedLanguageModel model, int vocab)
    {
        var rng = new Random(3);
        int[] a = Enumerable.Range(0, 30).Select(_ => rng.Next(vocab)).ToArray();
        int[] b = Enumerable.Range(0, 30).Select(_ => rng.Next(vocab)).ToArray();
        int[] ta = [5, 1, 7, 3, 9], tb = [2, 8, 0, 6, 4];
        using var cache = model.CreateKvCache(numBlocks: 10, blockSize: 8);
        SequenceChunk[][] steps =
        [
            [new SequenceChunk(a[..11], 0, ta)],
            // b's prefill returns a row per token (prompt logprobs), sharded like any other row.
            [new SequenceChunk(a[11..20], 11, ta), new SequenceChunk(b[..15], 0, tb) { ReturnsAllLogits = true }],
            [new SequenceChunk([a[20]], 20, ta), new SequenceChunk(b[15..21], 15, tb)],
        ];
        var rows = steps.Select(step => model.Forward(step, cache)).ToList();
        // Then both decode together, a step at a time.
        for (int i = 21; i < 29; i++)
            rows.Add(model.Forward([new SequenceChunk([a[i]], i, ta), new SequenceChunk([b[i]], i, tb)], cache));
        var all = cat(rows.ToArray(), 0);
        foreach (var r in rows) r.Dispose();
        return all;
    }

    /// <summary>Greedy decoding one token at a time through the paged cache (block size 16), after feeding the prompt.</summary>
    public static List<int> Greedy(IPagedLanguageModel model, IReadOnlyList<int> prompt, int newTokens)
    {
        int total = prompt.Count + newTokens;
        int blocks = (total + 15) / 16;
        using var cache = model.CreateKvCache(blocks, 16);
        var table = Enumerable.Range(0, blocks).ToArray();
        var generated = new List<int>();
        using (var first = model.Forward([new SequenceChunk(prompt.ToArray(), 0, table)], cache))
            generated.Add((int)first[0].argmax().item<long>());
        while (generated.Count < newTokens)
        {
            int pos = prompt.Count + generated.Count - 1;
            using var logits = model.Forward([new SequenceChunk([generated[^1]], pos, table)], cache);
            generated.Add((int)logits[0].argmax().item<long>());
        }
        return generated;
    }

    public static float MaxAbsDiff(Tensor a, Tensor b) => OServe.Models.Tests.Llama.Greedy.MaxAbsDiff(a, b);

    public static float Spread(Tensor t)
    {
        using var s = t.std();
        return s.item<float>();
    }
}
