using System.Collections.Immutable;

namespace OServe.Engine.Scheduling;

/// <summary>
/// Compute tokens [StartPosition, StartPosition + NumTokens) of <paramref name="Sequence"/> this step.
/// <paramref name="SamplesToken"/>: the chunk reaches the end of the sequence's known tokens, so the
/// executor must return the next token for it (a prefill's last chunk or a decode step).
/// </summary>
public readonly record struct ScheduledChunk(Sequence Sequence, int StartPosition, int NumTokens, bool SamplesToken)
{
    public int EndPosition => StartPosition + NumTokens;
}

/// <summary>
/// What one step runs: the only message from the scheduler to an executor (real or simulated).
/// Immutable; chunk order is the order the executor reports sampled tokens in.
/// </summary>
public sealed class SchedulerOutput
{
    public static SchedulerOutput Empty { get; } = new([], [], [], 0);

    public SchedulerOutput(
        ImmutableArray<ScheduledChunk> chunks,
        ImmutableArray<Sequence> preempted,
        ImmutableArray<string> finishedRequestIds,
        int numBatchedTokens)
    {
        Chunks = chunks;
        Preempted = preempted;
        FinishedRequestIds = finishedRequestIds;
        NumBatchedTokens = numBatchedTokens;
    }

    public ImmutableArray<ScheduledChunk> Chunks { get; }

    /// <summary>Sequences evicted by recompute this step (their blocks are already free).</summary>
    public ImmutableArray<Sequence> Preempted { get; }

    /// <summary>Requests finished or aborted since the previous step: executors drop per-request state.</summary>
    public ImmutableArray<string> FinishedRequestIds { get; }

    public int NumBatchedTokens { get; }
    public int NumChunks => Chunks.Length;
    public bool IsEmpty => Chunks.IsEmpty;
}
