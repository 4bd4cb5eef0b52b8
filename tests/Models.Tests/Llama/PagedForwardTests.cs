using OServe.Models.Kv;
using OServe.Models.Llama;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

/// <summary>The paged forward against full recomputation, on the reference path; <see cref="FusedPagedForwardTests"/> runs the same on the fused (GPU) path.</summary>
public class PagedForwardTests : IDisposable
{
    private const float Tolerance = 2e-4f;
    private readonly LlamaModel model;

    public PagedForwardTests() : this(ForwardPath.Reference) { }

    protected PagedForwardTests(ForwardPath path)
    {
        Path = path;
        model = TinyModels.Random(path: path);
    }

    protected ForwardPath Path { get; }

    public void Dispose()
    {
        model.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public void ChunkedPrefillThenDecodeMatchesFullRecomputation()
    {
        var tokens = TinyModels.Tokens(40, seed: 1);
        using var full = model.ForwardFull(tokens);
        using var spread = full.std();
        Assert.True(spread.item<float>() > 0.5f, $"logits std {spread.item<float>()}: too flat for the tolerance to mean anything");
        using var cache = new PagedKvCache(model.Config, numBlocks: 8, blockSize: 8, CPU, ScalarType.Float32);
        int[] table = [0, 1, 2, 3, 4];
        // Prefill in uneven chunks, then decode one token at a time; each step's logits are those of its last token.
        int[] steps = [13, 7, 1, 1, 10, 1, 1, 1, 1, 1, 1, 1, 1];
        int pos = 0;
        foreach (int n in steps)
        {
            using var logits = model.Forward([new SequenceChunk(tokens[pos..(pos + n)], pos, table)], cache);
            pos += n;
            Assert.True(Greedy.MaxAbsDiff(logits[0], full[pos - 1]) < Tolerance, $"logits after position {pos - 1} differ");
        }
        Assert.Equal(tokens.Length, pos);
    }

    [Fact]
    public void A_chunk_that_asks_for_all_logits_gets_one_row_per_token_beside_a_last_token_chunk()
    {
        var a = TinyModels.Tokens(23, seed: 5);
        var b = TinyModels.Tokens(9, seed: 6);
        using var fullA = model.ForwardFull(a);
        using var fullB = model.ForwardFull(b);
        using var cache = new PagedKvCache(model.Config, numBlocks: 16, blockSize: 4, CPU, ScalarType.Float32);
        // a's first chunk returns its 10 rows, b returns its last row, then a's second chunk all 13.
        using var first = model.Forward([new SequenceChunk(a[..10], 0, [0, 1, 2, 3, 4, 5]) { ReturnsAllLogits = true }, new SequenceChunk(b, 0, [8, 9, 10])], cache);
        Assert.Equal(11, first.shape[0]);
        for (int p = 0; p < 10; p++)
            Assert.True(Greedy.MaxAbsDiff(first[p], fullA[p]) < Tolerance, $"row {p} differs");
        Assert.True(Greedy.MaxAbsDiff(first[10], fullB[8]) < Tolerance);
        using var second = model.Forward([new SequenceChunk(a[10..], 10, [0, 1, 2, 3, 4, 5]) { ReturnsAllLogits = true }], cache);
        Assert.Equal(13, second.shape[0]);
        for (int p = 10; p < 23; p++)
            Assert.True(Greedy.MaxAbsDiff(second[p - 10], fullA[p]) < Tolerance, $"row {p} differs");
    }

    [Fact]
    public void ScrambledBlockTablesGiveContiguousAttention()
    {
        var tokens = TinyModels.Tokens(29, seed: 2);
        using var full = model.ForwardFull(tokens);
        using var cache = new PagedKvCache(model.Config, numBlocks: 16, blockSize: 4, CPU, ScalarType.Float32);
        int[] table = [11, 3, 14, 0, 7, 9, 2, 13];  // non-contiguous, out of order
        using var prefill = model.Forward([new SequenceChunk(tokens[..20], 0, table)], cache);
        Assert.True(Greedy.MaxAbsDiff(prefill[0], full[19]) < Tolerance);
        for (int pos = 20; pos < tokens.Length; pos++)
        {
            using var logits = model.Forward([new SequenceChunk([tokens[pos]], pos, table)], cache);
            Assert.True(Greedy.MaxAbsDiff(logits[0], full[pos]) < Tolerance, $"decode at {pos} differs");
        }
        // Each position landed in the slot its block table names.
        var k0 = cache.Keys(0);
        Assert.NotEqual(0f, k0[11].abs().sum().item<float>());
        Assert.Equal(0f, k0[1].abs().sum().item<float>());
    }

    [Fact]
    public void ABatchEqualsItsRequestsRunAlone()
    {
        // Three sequences at different stages share one step: a decode, a prefill chunk on top of cached tokens, and a fresh prefill.
        var a = TinyModels.Tokens(17, 3);
        var b = TinyModels.Tokens(25, 4);
        var c = TinyModels.Tokens(9, 5);
        using var cache = new PagedKvCache(model.Config, numBlocks: 24, blockSize: 4, CPU, ScalarType.Float32);
        int[] ta = [5, 1, 17, 8, 20], tb = [2, 9, 12, 3, 22, 15, 6], tc = [19, 0, 11];
        using (model.Forward([new SequenceChunk(a[..16], 0, ta), new SequenceChunk(b[..10], 0, tb)], cache)) { }

        using var batched = model.Forward([
            new SequenceChunk([a[16]], 16, ta),
            new SequenceChunk(b[10..], 10, tb),
            new SequenceChunk(c, 0, tc)], cache);

        using var fa = model.ForwardFull(a);
        using var fb = model.ForwardFull(b);
        using var fc = model.ForwardFull(c);
        Assert.Equal(new long[] { 3, model.Config.VocabSize }, batched.shape);
        Assert.True(Greedy.MaxAbsDiff(batched[0], fa[16]) < Tolerance);
        Assert.True(Greedy.MaxAbsDiff(batched[1], fb[24]) < Tolerance);
        Assert.True(Greedy.MaxAbsDiff(batched[2], fc[8]) < Tolerance);
    }

    [Fact]
    public void BatchedDecodeOfManySequencesEqualsEachAlone()
    {
        const int n = 6;
        var seqs = Enumerable.Range(0, n).Select(i => TinyModels.Tokens(5 + 3 * i, 10 + i)).ToArray();
        using var cache = new PagedKvCache(model.Config, numBlocks: 40, blockSize: 4, CPU, ScalarType.Float32);
        var tables = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, 6).Select(j => j * n + (n - 1 - i)).ToArray()).ToArray();
        using (model.Forward(seqs.Select((s, i) => new SequenceChunk(s[..^1], 0, tables[i])).ToArray(), cache)) { }
        using var step = model.Forward(seqs.Select((s, i) => new SequenceChunk([s[^1]], s.Length - 1, tables[i])).ToArray(), cache);
        for (int i = 0; i < n; i++)
        {
            using var full = model.ForwardFull(seqs[i]);
            Assert.True(Greedy.MaxAbsDiff(step[i], full[seqs[i].Length - 1]) < Tolerance, $"sequence {i} differs");
        }
    }

    [Fact]
    public void BFloat16ModelTracksFloat32()
    {
        using var bf16 = TinyModels.Random(dtype: ScalarType.BFloat16, path: Path);
        var tokens = TinyModels.Tokens(12, 6);
        using var cache = new PagedKvCache(bf16.Config, 4, 8, CPU, ScalarType.BFloat16);
        using var paged = bf16.Forward([new SequenceChunk(tokens, 0, [2, 0])], cache);
        using var reference = model.ForwardFull(tokens);
        Assert.Equal(ScalarType.Float32, paged.dtype);
        using var cos = nn.functional.cosine_similarity(paged[0], reference[11], dim: 0);
        Assert.True(cos.item<float>() > 0.98f, $"cosine similarity {cos.item<float>()}");
    }

    [Fact]
    public void BadChunksAreRejectedWithTheirBatchIndex()
    {
        using var cache = new PagedKvCache(model.Config, 2, 4, CPU, ScalarType.Float32);
        var e1 = Assert.Throws<ArgumentException>(() => model.Forward([new SequenceChunk([1], 0, [0]), new SequenceChunk([1, 2, 3, 4, 5], 0, [1])], cache));
        Assert.Contains("batch[1]: position 4 needs block index 1, but the block table has only 1 blocks", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => model.Forward([new SequenceChunk([500], 0, [0])], cache));
        Assert.Contains("batch[0]: token 0 has id 500, outside the vocabulary of 101", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => model.Forward([new SequenceChunk([1], 0, [7])], cache));
        Assert.Contains("block 7, outside the cache's 2 blocks", e3.Message);
    }

    [Fact]
    public void ForwardDoesNotLeakTensors()
    {
        using var cache = new PagedKvCache(model.Config, 4, 8, CPU, ScalarType.Float32);
        using (model.Forward([new SequenceChunk([1, 2, 3], 0, [0])], cache)) { }
        long before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int pos = 3; pos < 20; pos++)
        {
            using var logits = model.Forward([new SequenceChunk([pos], pos, [0, 1, 2])], cache);
        }
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [Fact]
    public void ModelAndCacheOutliveTheDisposeScopeTheyAreCreatedIn()
    {
        LlamaModel scoped;
        PagedKvCache cache;
        using (NewDisposeScope())
        {
            scoped = TinyModels.Random(seed: 9, path: Path);
            cache = new PagedKvCache(scoped.Config, 2, 8, CPU, ScalarType.Float32);
        }
        using (scoped)
        using (cache)
        {
            using var logits = scoped.Forward([new SequenceChunk([1, 2, 3], 0, [1])], cache);
            Assert.False(logits.isnan().any().item<bool>());
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 2e-4)]
    [InlineData(ScalarType.BFloat16, 0.15)]
    public void DecodeWithSixteenWideHeadsMatchesFullRecomputation(ScalarType dtype, double tolerance)
    {
        // Head dim 16 takes the CPU decode-attention kernel (where AVX-512 exists); batch of three with scrambled tables.
        var config = TinyModels.Config with { NumHeads = 4, NumKvHeads = 2 };
        using var m = TinyModels.Random(seed: 11, dtype: dtype, config: config, path: Path);
        var seqs = new[] { TinyModels.Tokens(23, 31), TinyModels.Tokens(9, 32), TinyModels.Tokens(17, 33) };
        int[][] tables = [[9, 2, 14, 5, 0, 11], [3, 12, 7], [13, 1, 8, 6, 10]];
        using var cache = new PagedKvCache(config, 16, 4, CPU, dtype);
        using (m.Forward(seqs.Select((s, i) => new SequenceChunk(s[..^3], 0, tables[i])).ToArray(), cache)) { }
        for (int back = 3; back >= 1; back--)
        {
            using var step = m.Forward(seqs.Select((s, i) => new SequenceChunk([s[^back]], s.Length - back, tables[i])).ToArray(), cache);
            for (int i = 0; i < seqs.Length; i++)
            {
                using var full = m.ForwardFull(seqs[i][..^(back - 1)]);
                using var expected = full[full.shape[0] - 1];
                Assert.True(Greedy.MaxAbsDiff(step[i], expected) < tolerance, $"sequence {i}, {back} from the end: {Greedy.MaxAbsDiff(step[i], expected)}");
            }
        }
    }
}

/// <summary>Every paged-forward check on <see cref="ForwardPath.Fused"/>, the GPU path, run here on the CPU.</summary>
public sealed class FusedPagedForwardTests() : PagedForwardTests(ForwardPath.Fused)
{
    [Fact]
    public void TheModelRunsTheFusedPath()
    {
        using var m = TinyModels.Random(path: ForwardPath.Fused);
        Assert.Equal(ForwardPath.Fused, m.ForwardPath);
        using var auto = TinyModels.Random(path: ForwardPath.Auto);
        Assert.Equal(ForwardPath.Reference, auto.ForwardPath); // Auto picks the fused path on CUDA only
    }
}
