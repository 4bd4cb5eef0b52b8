using Xunit;
using OServe.Engine.Scheduling;
using static OServe.Engine.Tests.Scheduling.SchedulingTestKit;

namespace OServe.Engine.Tests.Scheduling;

public sealed class KvBlockManagerTests
{
    [Fact]
    public void Allocate_covers_computed_plus_new_tokens_in_whole_blocks()
    {
        var blocks = new KvBlockManager(numBlocks: 10, blockSize: 4);
        var seq = Seq("a", promptLength: 9, maxTokens: 4);

        Assert.Equal(3, blocks.NumNewBlocksNeeded(seq, 9));
        blocks.Allocate(seq, 9);
        Assert.Equal([0, 1, 2], seq.BlockTable);
        Assert.Equal(7, blocks.NumFreeBlocks);
        Assert.Equal(0.3, blocks.Usage, 6);

        seq.NumComputedTokens = 9;
        Assert.Equal(0, blocks.NumNewBlocksNeeded(seq, 3)); // positions 9..11 fit block 2
        Assert.Equal(1, blocks.NumNewBlocksNeeded(seq, 4));
    }

    [Fact]
    public void CanAllocate_is_false_exactly_when_free_blocks_are_short()
    {
        var blocks = new KvBlockManager(numBlocks: 3, blockSize: 4);
        var a = Seq("a", 8, 1);
        var b = Seq("b", 8, 1);
        blocks.Allocate(a, 8);
        Assert.True(blocks.CanAllocate(b, 4));
        Assert.False(blocks.CanAllocate(b, 5));
        var error = Assert.Throws<InvalidOperationException>(() => blocks.Allocate(b, 5));
        Assert.Contains("'b' needs 2 more blocks", error.Message);
        Assert.Empty(b.BlockTable);
    }

    [Fact]
    public void CanAppend_needs_a_block_only_at_a_block_boundary()
    {
        var blocks = new KvBlockManager(numBlocks: 2, blockSize: 4);
        var seq = Seq("a", 4, 4);
        blocks.Allocate(seq, 4);
        seq.NumComputedTokens = 3;
        Assert.Equal(0, blocks.NumNewBlocksNeeded(seq, 1));
        seq.NumComputedTokens = 4;
        Assert.True(blocks.CanAppend(seq));
        blocks.Append(seq);
        Assert.Equal(2, seq.NumBlocks);
        seq.NumComputedTokens = 8;
        Assert.False(blocks.CanAppend(seq));
    }

    [Fact]
    public void Free_returns_every_block_and_rejects_a_double_free()
    {
        var blocks = new KvBlockManager(numBlocks: 5, blockSize: 2);
        var a = Seq("a", 5, 1);
        blocks.Allocate(a, 5);
        var stolen = a.BlockTable.ToArray();
        blocks.Free(a);
        Assert.Equal(5, blocks.NumFreeBlocks);
        Assert.Empty(a.BlockTable);

        var b = Seq("b", 5, 1);
        blocks.Allocate(b, 5);
        Assert.Equal(stolen.OrderBy(x => x), b.BlockTable.OrderBy(x => x)); // freed blocks are reused
        blocks.Free(b);
        foreach (var block in stolen)
            b.MutableBlockTable.Add(block);
        Assert.Throws<InvalidOperationException>(() => blocks.Free(b));
    }
}
