using OServe.Engine.Execution;

namespace OServe.Engine.Scheduling;

public enum SequenceStatus
{
    /// <summary>Queued, never scheduled; holds no KV blocks.</summary>
    Waiting,
    /// <summary>In the running set; holds KV blocks for its computed tokens.</summary>
    Running,
    /// <summary>Evicted by recompute: back in the waiting queue, no KV blocks, NumComputedTokens = 0.</summary>
    Preempted,
    /// <summary>Done (length, stop, abort); blocks freed; never scheduled again.</summary>
    Finished,
}

/// <summary>
/// One request's state as the scheduler sees it. Tokens are prompt then output; positions
/// [0, NumComputedTokens) have KV entries in the blocks of <see cref="BlockTable"/>, and the
/// next step must compute [NumComputedTokens, NumTokens). Mutated only by the scheduler (and the
/// engine's timestamps), on the engine loop thread.
/// </summary>
public sealed class Sequence
{
    private readonly List<int> _outputTokens = [];
    private readonly List<int> _blockTable = [];

    /// <param name="promptTokens">
    /// Read by position only; the simulator passes a cheap synthetic list instead of a real array.
    /// </param>
    public Sequence(string requestId, IReadOnlyList<int> promptTokens, SamplingParams sampling, double arrivalTime = 0, int typeIndex = -1)
    {
        ArgumentException.ThrowIfNullOrEmpty(requestId);
        ArgumentNullException.ThrowIfNull(promptTokens);
        ArgumentNullException.ThrowIfNull(sampling);
        if (promptTokens.Count == 0)
            throw new ArgumentException($"request '{requestId}': the prompt has no tokens", nameof(promptTokens));
        RequestId = requestId;
        PromptTokens = promptTokens;
        NumPromptTokens = promptTokens.Count;
        Sampling = sampling;
        ArrivalTime = arrivalTime;
        TypeIndex = typeIndex;
    }

    public string RequestId { get; }
    public IReadOnlyList<int> PromptTokens { get; }
    public IReadOnlyList<int> OutputTokens => _outputTokens;
    public SamplingParams Sampling { get; }

    /// <summary>The planner's request type (workload class), or -1 when untyped.</summary>
    public int TypeIndex { get; }

    public int NumPromptTokens { get; }
    public int NumOutputTokens => _outputTokens.Count;
    public int NumTokens => NumPromptTokens + _outputTokens.Count;

    /// <summary>Tokens whose KV entries exist. Reset to 0 by preemption (recompute).</summary>
    public int NumComputedTokens { get; internal set; }

    /// <summary>KV block ids, in position order: position p lives in block BlockTable[p / blockSize].</summary>
    public IReadOnlyList<int> BlockTable => _blockTable;
    internal List<int> MutableBlockTable => _blockTable;
    public int NumBlocks => _blockTable.Count;

    public SequenceStatus Status { get; internal set; } = SequenceStatus.Waiting;
    public FinishReason FinishReason { get; internal set; }
    public bool IsFinished => Status == SequenceStatus.Finished;
    public int NumPreemptions { get; internal set; }

    /// <summary>Logprobs of prompt tokens by position (index 0 stays null), when the request asked for them; engine loop only.</summary>
    public TokenLogprob?[]? PromptLogprobs { get; internal set; }

    public int LastTokenId => _outputTokens.Count > 0 ? _outputTokens[^1] : PromptTokens[NumPromptTokens - 1];

    // Engine-clock timestamps (seconds) for TTFT / ITL / E2E; NaN until the event happens.
    public double ArrivalTime { get; }
    public double FirstScheduledTime { get; internal set; } = double.NaN;
    public double FirstTokenTime { get; internal set; } = double.NaN;
    public double LastTokenTime { get; internal set; } = double.NaN;
    public double FinishedTime { get; internal set; } = double.NaN;

    public int TokenAt(int position) =>
        position < NumPromptTokens ? PromptTokens[position] : _outputTokens[position - NumPromptTokens];

    /// <summary>Copies tokens [start, start + destination.Length) into <paramref name="destination"/>.</summary>
    public void CopyTokens(int start, Span<int> destination)
    {
        if (start < 0 || start + destination.Length > NumTokens)
            throw new ArgumentOutOfRangeException(nameof(start), $"tokens [{start}, {start + destination.Length}) outside [0, {NumTokens}) of '{RequestId}'");
        for (int i = 0; i < destination.Length; i++)
            destination[i] = TokenAt(start + i);
    }

    internal void AppendToken(int tokenId) => _outputTokens.Add(tokenId);

    public override string ToString() =>
        $"{RequestId} [{Status}] computed {NumComputedTokens}/{NumTokens}, prompt {NumPromptTokens}, blocks {NumBlocks}";
}
