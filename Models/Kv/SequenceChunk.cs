namespace OServe.Models.Kv;

/// <summary>
/// One sequence's share of a forward step: the tokens at positions
/// StartPosition .. StartPosition + TokenIds.Count - 1. Tokens before StartPosition are already in
/// the KV cache, in the blocks of <see cref="BlockTable"/> (position p lives in slot
/// BlockTable[p / blockSize] * blockSize + p % blockSize). Prefill, chunked prefill and decode are
/// all this one shape (vLLM v1: each step closes the gap between computed and known tokens).
/// </summary>
public sealed record SequenceChunk(IReadOnlyList<int> TokenIds, int StartPosition, IReadOnlyList<int> BlockTable)
{
    public int EndPosition => StartPosition + TokenIds.Count;

    /// <summary>
    /// Return logits for every token of the chunk, not only the last (prompt logprobs need the
    /// prediction at every position). The forward's rows are then this chunk's tokens in order.
    /// </summary>
    public bool ReturnsAllLogits { get; init; }

    /// <summary>Rows of logits the forward returns for this chunk.</summary>
    public int NumLogitRows => ReturnsAllLogits ? TokenIds.Count : 1;
}
