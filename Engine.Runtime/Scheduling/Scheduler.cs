using System.Collections.Immutable;
using System.Runtime.InteropServices;
using OServe.Engine.Execution;

namespace OServe.Engine.Scheduling;

/// <summary>
/// Continuous-batching scheduler of one replica (vLLM v1 style, no prefill/decode modes).
/// Single-threaded: the engine loop (or the simulator) owns it. Decides only; the executor runs
/// what <see cref="Schedule"/> returns and hands sampled tokens back through <see cref="Update"/>.
/// </summary>
public sealed class Scheduler
{
    private readonly List<Sequence> _running = [];
    private readonly SequenceQueue _waiting = new();
    private readonly Dictionary<string, Sequence> _live = new(StringComparer.Ordinal);
    private readonly IStopCondition _stopCondition;

    // Reused every step so Schedule() allocates only the arrays of the output it returns.
    private readonly List<ScheduledChunk> _chunks = [];
    private readonly List<Sequence> _preempted = [];
    private readonly List<string> _finishedSinceLastStep = [];

    public Scheduler(SchedulerConfig config, IStopCondition? stopCondition = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        BlockManager = new KvBlockManager(config.NumKvBlocks, config.BlockSize);
        _stopCondition = stopCondition ?? new TokenStopCondition(eosTokenId: null);
    }

    public SchedulerConfig Config { get; }
    public KvBlockManager BlockManager { get; }
    public IReadOnlyList<Sequence> Running => _running;
    public IReadOnlyList<Sequence> Waiting => _waiting;
    public int NumRunning => _running.Count;
    public int NumWaiting => _waiting.Count;
    public bool HasUnfinishedSequences => _live.Count > 0;
    public long NumPreemptionsTotal { get; private set; }

    public bool TryGetSequence(string requestId, out Sequence sequence) =>
        _live.TryGetValue(requestId, out sequence!);

    /// <summary>Queues a new request (FCFS). Throws <see cref="ArgumentException"/> naming the field when it can never run.</summary>
    public void Add(Sequence seq)
    {
        ArgumentNullException.ThrowIfNull(seq);
        if (seq.Status != SequenceStatus.Waiting || seq.NumComputedTokens != 0 || seq.NumOutputTokens != 0)
            throw new ArgumentException($"request '{seq.RequestId}' was already scheduled ({seq})", nameof(seq));
        if (seq.Sampling.MaxTokens < 1)
            throw new ArgumentException($"request '{seq.RequestId}': max_tokens must be at least 1, got {seq.Sampling.MaxTokens}", "max_tokens");
        long total = (long)seq.NumPromptTokens + seq.Sampling.MaxTokens;
        if (total > Config.MaxModelLen)
            throw new ArgumentException(
                $"request '{seq.RequestId}': prompt ({seq.NumPromptTokens} tokens) + max_tokens ({seq.Sampling.MaxTokens}) = {total} " +
                $"exceeds the model's maximum length of {Config.MaxModelLen} tokens", "max_tokens");
        if (!_live.TryAdd(seq.RequestId, seq))
            throw new ArgumentException($"request id '{seq.RequestId}' is already in flight", "request_id");
        _waiting.PushBack(seq);
    }

    public SchedulerOutput Schedule()
    {
        // The rule: every sequence has NumComputedTokens and NumTokens, and a step closes as much
        // of each gap as the token budget (MaxNumBatchedTokens) and MaxNumSeqs allow. A decode is
        // a gap of 1; a prefill (or a recompute after preemption) is a larger gap, chunked when the
        // budget runs out. Running sequences go first, in admission order, then waiting ones FCFS.
        // When KV blocks run out, the newest running sequence is preempted by recompute: its
        // blocks are freed, NumComputedTokens reset, and it returns to the front of the queue.
        int budget = Config.MaxNumBatchedTokens;
        _chunks.Clear();
        _preempted.Clear();

        int index = 0;
        while (index < _running.Count && budget > 0)
        {
            var seq = _running[index];
            int numNew = Math.Min(seq.NumTokens - seq.NumComputedTokens, budget);
            if (!TryAllocateOrPreempt(seq, numNew))
                break; // seq itself was the newest and got preempted: nothing after it is left.
            AddChunk(seq, numNew);
            budget -= numNew;
            index++;
        }

        // Admitting new work in a step that just evicted some would only thrash the cache.
        if (_preempted.Count == 0)
        {
            while (_waiting.Count > 0 && budget > 0 && _running.Count < Config.MaxNumSeqs)
            {
                var seq = _waiting.PeekFront();
                int numNew = Math.Min(seq.NumTokens - seq.NumComputedTokens, budget);
                if (!BlockManager.CanAllocate(seq, numNew))
                    break; // FCFS: no overtaking the head of the queue.
                _waiting.PopFront();
                BlockManager.Allocate(seq, numNew);
                seq.Status = SequenceStatus.Running;
                _running.Add(seq);
                AddChunk(seq, numNew);
                budget -= numNew;
            }
        }

        if (_chunks.Count == 0 && _preempted.Count == 0 && _finishedSinceLastStep.Count == 0)
            return SchedulerOutput.Empty;
        var output = new SchedulerOutput(
            ToImmutable(_chunks), ToImmutable(_preempted), ToImmutable(_finishedSinceLastStep),
            Config.MaxNumBatchedTokens - budget);
        _finishedSinceLastStep.Clear();
        return output;
    }

    /// <summary>
    /// Applies a finished step: advances NumComputedTokens of every chunk, appends the sampled
    /// token of each chunk that <see cref="ScheduledChunk.SamplesToken"/>, finishes sequences that
    /// hit a stop condition (freeing their blocks). <paramref name="sampledTokens"/> is indexed
    /// like <see cref="SchedulerOutput.Chunks"/>; entries of non-sampling chunks are ignored.
    /// </summary>
    public void Update(SchedulerOutput output, ReadOnlySpan<int> sampledTokens)
    {
        ArgumentNullException.ThrowIfNull(output);
        var chunks = output.Chunks;
        if (sampledTokens.Length != chunks.Length)
            throw new ArgumentException($"executor returned {sampledTokens.Length} token slots for {chunks.Length} scheduled chunks", nameof(sampledTokens));
        bool anyFinished = false;
        for (int k = 0; k < chunks.Length; k++)
        {
            var chunk = chunks[k];
            var seq = chunk.Sequence;
            if (seq.Status != SequenceStatus.Running)
                continue; // aborted between Schedule and Update: nothing to apply.
            if (chunk.StartPosition != seq.NumComputedTokens)
                throw new InvalidOperationException($"stale step for '{seq.RequestId}': chunk starts at {chunk.StartPosition}, computed {seq.NumComputedTokens}");
            seq.NumComputedTokens += chunk.NumTokens;
            if (!chunk.SamplesToken)
                continue;
            int token = sampledTokens[k];
            if (token < 0)
                throw new InvalidOperationException($"executor sampled no token for '{seq.RequestId}' although its chunk reached the end of its tokens");
            seq.AppendToken(token);
            var reason = _stopCondition.Check(seq);
            if (reason == FinishReason.None && seq.NumTokens >= Config.MaxModelLen)
                reason = FinishReason.Length;
            if (reason != FinishReason.None)
            {
                Release(seq, reason);
                anyFinished = true;
            }
        }
        if (anyFinished)
            _running.RemoveAll(static s => s.Status == SequenceStatus.Finished);
    }

    /// <summary>Aborts a live request and frees its blocks; false when it is unknown or already done.</summary>
    public bool Abort(string requestId) =>
        _live.TryGetValue(requestId, out var seq) && Finish(seq, FinishReason.Abort);

    /// <summary>Finishes a live sequence from outside a step (stop string, abort); frees its blocks.</summary>
    public bool Finish(Sequence seq, FinishReason reason)
    {
        ArgumentNullException.ThrowIfNull(seq);
        if (reason == FinishReason.None)
            throw new ArgumentException("a finish needs a reason", nameof(reason));
        if (seq.Status == SequenceStatus.Finished || !_live.TryGetValue(seq.RequestId, out var live) || !ReferenceEquals(live, seq))
            return false;
        if (seq.Status == SequenceStatus.Running)
            _running.Remove(seq);
        else
            _waiting.Remove(seq);
        Release(seq, reason);
        return true;
    }

    /// <summary>
    /// Live migration, source side: takes an unfinished sequence out of this scheduler without
    /// finishing it. Its blocks are freed here (the caller moves their contents elsewhere); it keeps
    /// NumComputedTokens and its output tokens for <see cref="Adopt"/> on another replica. Reported
    /// in FinishedRequestIds so the executor drops its per-request state. False when not live here.
    /// </summary>
    public bool Detach(Sequence seq)
    {
        ArgumentNullException.ThrowIfNull(seq);
        if (seq.Status == SequenceStatus.Finished || !_live.TryGetValue(seq.RequestId, out var live) || !ReferenceEquals(live, seq))
            return false;
        if (seq.Status == SequenceStatus.Running)
            _running.Remove(seq);
        else
            _waiting.Remove(seq);
        BlockManager.Free(seq);
        seq.Status = SequenceStatus.Waiting;
        _live.Remove(seq.RequestId);
        _finishedSinceLastStep.Add(seq.RequestId);
        return true;
    }

    /// <summary>
    /// Live migration, target side: admits a sequence detached from another scheduler. When its
    /// computed tokens fit the free blocks (and MaxNumSeqs allows) it joins the running set with its
    /// KV cache and continues where it stopped; otherwise it joins the waiting queue to recompute.
    /// </summary>
    public void Adopt(Sequence seq)
    {
        ArgumentNullException.ThrowIfNull(seq);
        if (seq.Status != SequenceStatus.Waiting || seq.NumBlocks != 0)
            throw new ArgumentException($"request '{seq.RequestId}' must be detached before it is adopted ({seq})", nameof(seq));
        long total = (long)seq.NumPromptTokens + seq.Sampling.MaxTokens;
        if (total > Config.MaxModelLen)
            throw new ArgumentException($"request '{seq.RequestId}': {total} tokens exceed this replica's maximum length of {Config.MaxModelLen}", nameof(seq));
        if (!_live.TryAdd(seq.RequestId, seq))
            throw new ArgumentException($"request id '{seq.RequestId}' is already in flight", "request_id");
        if (seq.NumComputedTokens > 0 && _running.Count < Config.MaxNumSeqs && BlockManager.CanAllocate(seq, 0))
        {
            BlockManager.Allocate(seq, 0);
            seq.Status = SequenceStatus.Running;
            _running.Add(seq);
            return;
        }
        seq.NumComputedTokens = 0;
        _waiting.PushBack(seq);
    }

    private bool TryAllocateOrPreempt(Sequence seq, int numNew)
    {
        while (!BlockManager.CanAllocate(seq, numNew))
        {
            // Victims come from the back (newest), i.e. never a sequence already scheduled this step.
            var victim = _running[^1];
            _running.RemoveAt(_running.Count - 1);
            Preempt(victim);
            if (ReferenceEquals(victim, seq))
                return false;
        }
        BlockManager.Allocate(seq, numNew);
        return true;
    }

    private void Preempt(Sequence victim)
    {
        BlockManager.Free(victim);
        victim.NumComputedTokens = 0;
        victim.Status = SequenceStatus.Preempted;
        victim.NumPreemptions++;
        NumPreemptionsTotal++;
        _waiting.PushFront(victim);
        _preempted.Add(victim);
    }

    private void AddChunk(Sequence seq, int numNew)
    {
        int start = seq.NumComputedTokens;
        _chunks.Add(new ScheduledChunk(seq, start, numNew, start + numNew == seq.NumTokens));
    }

    private void Release(Sequence seq, FinishReason reason)
    {
        seq.Status = SequenceStatus.Finished;
        seq.FinishReason = reason;
        BlockManager.Free(seq);
        _live.Remove(seq.RequestId);
        _finishedSinceLastStep.Add(seq.RequestId);
    }

    private static ImmutableArray<T> ToImmutable<T>(List<T> items) =>
        items.Count == 0 ? [] : ImmutableCollectionsMarshal.AsImmutableArray(items.ToArray());
}
