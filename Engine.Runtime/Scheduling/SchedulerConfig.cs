namespace OServe.Engine.Scheduling;

/// <summary>Per-replica scheduler limits; names and meaning follow vLLM's engine arguments.</summary>
public sealed record SchedulerConfig
{
    /// <summary>Most sequences in one step (--max-num-seqs).</summary>
    public int MaxNumSeqs { get; init; } = 256;

    /// <summary>Token budget of one step, prefill and decode together (--max-num-batched-tokens).</summary>
    public int MaxNumBatchedTokens { get; init; } = 2048;

    /// <summary>Tokens per KV block (--block-size).</summary>
    public int BlockSize { get; init; } = 16;

    /// <summary>KV blocks the replica's cache holds.</summary>
    public required int NumKvBlocks { get; init; }

    /// <summary>Longest prompt + output of one request, in tokens (--max-model-len).</summary>
    public required int MaxModelLen { get; init; }

    /// <summary>Throws with the offending field named when the limits cannot work together.</summary>
    public void Validate()
    {
        Positive(MaxNumSeqs, nameof(MaxNumSeqs));
        Positive(MaxNumBatchedTokens, nameof(MaxNumBatchedTokens));
        Positive(BlockSize, nameof(BlockSize));
        Positive(NumKvBlocks, nameof(NumKvBlocks));
        Positive(MaxModelLen, nameof(MaxModelLen));
        // A request of MaxModelLen tokens must fit the cache alone, else it could never finish.
        long capacity = (long)NumKvBlocks * BlockSize;
        if (MaxModelLen > capacity)
            throw new ArgumentException(
                $"scheduler config: MaxModelLen {MaxModelLen} exceeds the KV cache capacity of {capacity} tokens " +
                $"({NumKvBlocks} blocks x {BlockSize}); lower MaxModelLen or give the cache more blocks", nameof(MaxModelLen));
    }

    private static void Positive(int value, string field)
    {
        if (value <= 0)
            throw new ArgumentException($"scheduler config: {field} must be positive, got {value}", field);
    }
}
