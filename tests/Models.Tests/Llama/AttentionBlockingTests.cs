using OServe.Models.Llama;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

/// <summary>A long prompt's attention runs in query blocks (bounded score memory); the result is the one-call result.</summary>
public sealed class AttentionBlockingTests
{
    [Theory]
    [InlineData(1, 1500, 8, 4)]   // one long prompt, grouped-query heads: 1500 x 8 x 1500 scores, blocks of 174 queries
    [InlineData(2, 700, 4, 4)]    // two padded sequences, blocks of 374 queries (narrowed views of a batch)
    public void Blocked_attention_equals_one_call(int batch, int queries, int heads, int kvHeads)
    {
        const int hd = 16;
        using var scope = NewDisposeScope();
        manual_seed(7);
        var q = randn(batch, queries, heads, hd);
        var k = randn(batch, kvHeads, queries, hd);
        var v = randn(batch, kvHeads, queries, hd);
        var positions = Enumerable.Range(0, batch).Select(_ => Enumerable.Range(0, queries).ToArray()).ToArray();
        var mask = Attention.CausalMask(positions, Enumerable.Repeat(queries, batch).ToArray(), queries, queries, CPU);
        Assert.True((long)batch * heads * queries * queries > Attention.MaxScoreElements, "the case must take the blocked path");

        var blocked = Attention.Attend(q, k, v, mask);
        var whole = Attention.AttendBlock(q, k, v, mask);

        Assert.Equal(whole.shape, blocked.shape);
        Assert.True((blocked - whole).abs().max().item<float>() < 1e-5f);
    }
}
