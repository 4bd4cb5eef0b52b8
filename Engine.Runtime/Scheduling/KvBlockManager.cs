namespace OServe.Engine.Scheduling;

/// <summary>
/// Paged KV cache bookkeeping for one replica: which fixed-size blocks each sequence owns.
/// Allocation comes in check-then-do pairs (CanAllocate/Allocate, CanAppend/Append) so the
/// scheduler decides before it mutates; Free returns every block of a sequence. No tensors here:
/// the executor maps block ids to cache memory. No prefix caching: every block has one owner.
/// </summary>
public sealed class KvBlockManager
{
    private readonly int[] _freeStack;
    private readonly bool[] _isFree;
    private int _numFree;

    public KvBlockManager(int numBlocks, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        _freeStack = new int[numBlocks];
        _isFree = new bool[numBlocks];
        // Highest id at the bottom so block 0 is handed out first (readable tests and traces).
        for (int i = 0; i < numBlocks; i++)
        {
            _freeStack[i] = numBlocks - 1 - i;
            _isFree[i] = true;
        }
        _numFree = numBlocks;
    }

    public int NumBlocks { get; }
    public int BlockSize { get; }
    public int NumFreeBlocks => _numFree;
    public int NumUsedBlocks => NumBlocks - _numFree;

    /// <summary>Fraction of blocks in use, 0..1 (vLLM's kv_cache_usage_perc).</summary>
    public double Usage => (double)(NumBlocks - _numFree) / NumBlocks;

    public int NumBlocksFor(int numTokens) => (numTokens + BlockSize - 1) / BlockSize;

    /// <summary>Blocks <paramref name="seq"/> lacks to hold KV for its computed tokens plus <paramref name="numNewTokens"/>.</summary>
    public int NumNewBlocksNeeded(Sequence seq, int numNewTokens)
    {
        int needed = NumBlocksFor(seq.NumComputedTokens + numNewTokens) - seq.NumBlocks;
        return needed > 0 ? needed : 0;
    }

    public bool CanAllocate(Sequence seq, int numNewTokens) => NumNewBlocksNeeded(seq, numNewTokens) <= _numFree;

    /// <summary>Grows the block table to cover the tokens the coming step will compute.</summary>
    public void Allocate(Sequence seq, int numNewTokens)
    {
        int needed = NumNewBlocksNeeded(seq, numNewTokens);
        if (needed > _numFree)
            throw new InvalidOperationException(
                $"KV cache: '{seq.RequestId}' needs {needed} more blocks for {numNewTokens} tokens but {_numFree} are free; call CanAllocate first");
        var table = seq.MutableBlockTable;
        for (int i = 0; i < needed; i++)
        {
            int block = _freeStack[--_numFree];
            _isFree[block] = false;
            table.Add(block);
        }
    }

    /// <summary>Decode case: room for one more token.</summary>
    public bool CanAppend(Sequence seq) => CanAllocate(seq, 1);

    public void Append(Sequence seq) => Allocate(seq, 1);

    /// <summary>Returns every block of <paramref name="seq"/> to the pool. Idempotent for an empty table.</summary>
    public void Free(Sequence seq)
    {
        var table = seq.MutableBlockTable;
        // Reverse so the sequence's first block is reused first: LIFO keeps recently used memory hot.
        for (int i = table.Count - 1; i >= 0; i--)
        {
            int block = table[i];
            if (_isFree[block])
                throw new InvalidOperationException($"KV cache: block {block} of '{seq.RequestId}' is already free (double free)");
            _isFree[block] = true;
            _freeStack[_numFree++] = block;
        }
        table.Clear();
    }
}
