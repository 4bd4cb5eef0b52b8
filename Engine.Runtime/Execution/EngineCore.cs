using System.Collections.Immutable;
using System.Diagnostics;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Execution;

/// <summary>
/// One replica's step loop body: schedule, run, update, emit. Single-threaded (the engine loop
/// thread, or the simulator's event loop). The real engine calls <see cref="Step"/>; a
/// discrete-event simulator calls <see cref="BeginStep"/>, schedules the step's end from the cost
/// model, and calls <see cref="CompleteStep"/> when the virtual clock gets there.
/// </summary>
public sealed class EngineCore
{
    private readonly IModelRunner _runner;
    private readonly IGenerationSink _sink;
    private readonly IEngineTokenizer? _tokenizer;
    private readonly Dictionary<string, OutputText> _texts = new(StringComparer.Ordinal);
    private int[] _sampled = new int[64];
    private bool[] _wasLive = new bool[64];
    private readonly StepLogprobs _logprobs = new();

    /// <param name="tokenizer">Null when no text is wanted (the simulator): deltas are empty and stop strings are ignored.</param>
    public EngineCore(Scheduler scheduler, IModelRunner runner, IClock clock, IGenerationSink sink, IEngineTokenizer? tokenizer = null)
    {
        Scheduler = scheduler ?? throw new ArgumentNullException(nameof(scheduler));
        _runner = runner ?? throw new ArgumentNullException(nameof(runner));
        Clock = clock ?? throw new ArgumentNullException(nameof(clock));
        _sink = sink ?? throw new ArgumentNullException(nameof(sink));
        _tokenizer = tokenizer;
    }

    public Scheduler Scheduler { get; }
    public IClock Clock { get; }
    public bool HasWork => Scheduler.HasUnfinishedSequences;

    /// <summary>Told about each step <see cref="Step"/> runs (not the simulator's Begin/CompleteStep pairs).</summary>
    public IStepObserver? StepObserver { get; init; }
    public long NumSteps { get; private set; }

    /// <summary>Where the last <see cref="Step"/> spent its time (the engine's own measurement of its host overhead).</summary>
    public StepTimings LastStepTimings { get; private set; }

    /// <summary>Prompt tokens of requests that produced their first token (vLLM's prompt_tokens_total).</summary>
    public long PromptTokensTotal { get; private set; }
    public long GenerationTokensTotal { get; private set; }

    /// <summary>Queues a request. Throws <see cref="ArgumentException"/> (ParamName = the request field) when it can never run.</summary>
    public Sequence AddRequest(GenerationRequest request, int typeIndex = -1) => AddRequest(request, typeIndex, resumeKv: null);

    /// <summary>
    /// Queues a request, continuing from <paramref name="resumeKv"/> when given: the KV entries of
    /// its first tokens, computed elsewhere (a request moved from another process's replica). They
    /// are written into its blocks and only the rest of its prompt is computed here, when this
    /// replica has room for them now and a runner that imports KV; otherwise the whole prompt is
    /// computed, as without them. Disposes <paramref name="resumeKv"/>.
    /// </summary>
    public Sequence AddRequest(GenerationRequest request, int typeIndex, KvBlocks? resumeKv)
    {
        using (resumeKv)
        {
            ArgumentNullException.ThrowIfNull(request);
            int resumed = request.ResumedOutputTokens;
            if (resumed < 0 || resumed >= request.PromptTokens.Count)
                throw new ArgumentException($"resumed output tokens: must be 0 to the prompt's length - 1 ({request.PromptTokens.Count - 1}), got {resumed}",
                    nameof(GenerationRequest.ResumedOutputTokens));
            var seq = new Sequence(request.RequestId, request.PromptTokens, request.Sampling, request.ArrivalTime, typeIndex);
            var text = _tokenizer is null ? null : ResumedText(request, resumed);
            // At least the last prompt token is computed here: its logits give the next token.
            int cached = Math.Min(resumeKv?.NumTokens ?? 0, request.PromptTokens.Count - 1);
            if (cached > 0 && _runner is IKvMigration { CanMigrate: true })
            {
                // As a request moved between replicas: its first tokens computed, their KV to import.
                // A view of those tokens shares resumeKv's blocks (disposing both is safe).
                seq.NumComputedTokens = cached;
                Adopt(new DetachedSequence(seq, text, cached == resumeKv!.NumTokens ? resumeKv : new KvBlocks(resumeKv.Blocks, cached)));
                return seq;
            }
            Scheduler.Add(seq);
            if (text is not null)
                _texts[seq.RequestId] = text;
            return seq;
        }
    }

    /// <summary>
    /// The output text of a request, as it stands after its <paramref name="resumed"/> already-streamed
    /// tokens: they go through the same decoder and stop-string buffer as on the replica that streamed
    /// them, so this text sends what that one held back and sees a stop string that spans the resume.
    /// What they emit here was sent by that replica, so it is dropped.
    /// </summary>
    private OutputText ResumedText(GenerationRequest request, int resumed)
    {
        var prompt = request.PromptTokens;
        var text = new OutputText(_tokenizer!.CreateDecoder(resumed == 0 ? prompt : prompt.Take(prompt.Count - resumed).ToArray()), request.Sampling.Stop);
        for (int i = prompt.Count - resumed; i < prompt.Count; i++)
            text.Add(prompt[i], decodeToken: true, isLast: false, out _);
        return text;
    }

    /// <summary>Aborts a live request: frees its KV blocks and emits its final (abort) output. False when unknown or done.</summary>
    public bool Abort(string requestId)
    {
        if (!Scheduler.TryGetSequence(requestId, out var seq) || !Scheduler.Finish(seq, FinishReason.Abort))
            return false;
        EmitEnd(seq, FinishReason.Abort, error: null);
        return true;
    }

    /// <summary>
    /// Engine steps a started request still needs at most: its prompt's remaining chunks (of
    /// max_num_batched_tokens) and its remaining output tokens, one step each. Null when the request
    /// is not live here or has not started (no KV yet, so moving it costs nothing).
    /// </summary>
    internal int? StepsLeft(string requestId)
    {
        if (!Scheduler.TryGetSequence(requestId, out var seq) || seq.Status != SequenceStatus.Running || seq.NumComputedTokens <= 0)
            return null;
        int chunk = Math.Max(1, Scheduler.Config.MaxNumBatchedTokens);
        int promptLeft = Math.Max(0, seq.NumPromptTokens - seq.NumComputedTokens);
        int outputLeft = Math.Max(0, seq.Sampling.MaxTokens - seq.NumOutputTokens);
        return (promptLeft + chunk - 1) / chunk + outputLeft;
    }

    /// <summary>
    /// Live migration, source side: takes a live request out of this replica without finishing it,
    /// with its KV entries (when <paramref name="withKv"/>, it is running and the runner can export
    /// them) and its output-text state, so <see cref="Adopt"/> on another replica continues it.
    /// Null when the request is not live here.
    /// </summary>
    internal DetachedSequence? Detach(string requestId, bool withKv)
    {
        if (!Scheduler.TryGetSequence(requestId, out var seq))
            return null;
        KvBlocks? kv = null;
        if (withKv && seq.Status == SequenceStatus.Running && seq.NumComputedTokens > 0 && _runner is IKvMigration { CanMigrate: true } migration)
        {
            try
            {
                kv = migration.Export(seq); // before Detach frees the blocks
            }
            catch (Exception error) when (error is not OutOfMemoryException)
            {
                // The request still moves; the target recomputes its context instead of losing it.
                System.Diagnostics.Trace.TraceWarning($"KV export of '{requestId}' failed, it will recompute on the target: {error.Message}");
            }
        }
        if (!Scheduler.Detach(seq))
        {
            kv?.Dispose();
            return null;
        }
        _texts.Remove(requestId, out var text);
        return new DetachedSequence(seq, text, kv);
    }

    /// <summary>
    /// Live migration, target side: admits a detached request; when the scheduler keeps its
    /// computed tokens (room in the cache) the KV entries are written into its new blocks,
    /// otherwise it recomputes them. Disposes the KV copy.
    /// </summary>
    internal void Adopt(DetachedSequence detached)
    {
        var (seq, text, kv) = detached;
        using (kv)
        {
            int computed = seq.NumComputedTokens;
            if (kv is null || _runner is not IKvMigration { CanMigrate: true })
                seq.NumComputedTokens = 0; // nothing to continue from: recompute
            Scheduler.Adopt(seq); // running at once with blocks for its computed tokens, or queued to compute them all
            if (seq.Status == SequenceStatus.Running && kv is not null && computed == kv.NumTokens)
            {
                try
                {
                    ((IKvMigration)_runner).Import(seq, kv);
                }
                catch (Exception error) when (error is ArgumentException or InvalidOperationException)
                {
                    Scheduler.Finish(seq, FinishReason.Abort); // frees its blocks; the caller fails the request
                    throw new ArgumentException($"request '{seq.RequestId}': its KV does not fit this replica: {error.Message}", error);
                }
            }
        }
        if (_tokenizer is not null)
            _texts[seq.RequestId] = text ?? new OutputText(_tokenizer.CreateDecoder(seq.PromptTokens), seq.Sampling.Stop);
    }

    /// <summary>Runs one full step; false when there was nothing to compute.</summary>
    public bool Step()
    {
        double start = StepObserver is null ? 0 : Clock.Now;
        long t0 = Stopwatch.GetTimestamp();
        var output = BeginStep();
        if (output.IsEmpty && output.FinishedRequestIds.IsEmpty)
            return false;
        var shape = StepObserver is null ? default : BatchShape.Of(output); // before Update moves the sequences on
        var sampled = Buffer(ref _sampled, output.NumChunks);
        sampled.Fill(IModelRunner.NoToken);
        // Only steps with a request that asked for logprobs pay for them.
        var logprobs = StepLogprobs.AreWanted(output) ? _logprobs : null;
        long t1 = Stopwatch.GetTimestamp();
        try
        {
            if (logprobs is null)
                _runner.Execute(output, sampled);
            else
            {
                logprobs.Reset(output.NumChunks);
                _runner.Execute(output, sampled, logprobs);
            }
        }
        catch (Exception error)
        {
            // The step's requests cannot continue (their KV state is unknown); the others can.
            FailStep(output, error);
            return true;
        }
        long t2 = Stopwatch.GetTimestamp();
        CompleteStep(output, sampled, logprobs);
        LastStepTimings = new StepTimings(Stopwatch.GetElapsedTime(t0, t1).TotalSeconds, Stopwatch.GetElapsedTime(t1, t2).TotalSeconds,
            Stopwatch.GetElapsedTime(t2).TotalSeconds);
        if (StepObserver is not null && !output.IsEmpty)
            StepObserver.OnStep(new StepRecord(start, Clock.Now, shape));
        return !output.IsEmpty;
    }

    public SchedulerOutput BeginStep()
    {
        var output = Scheduler.Schedule();
        double now = Clock.Now;
        foreach (var chunk in output.Chunks)
            if (double.IsNaN(chunk.Sequence.FirstScheduledTime))
                chunk.Sequence.FirstScheduledTime = now;
        return output;
    }

    public void CompleteStep(SchedulerOutput output, ReadOnlySpan<int> sampledTokens) => CompleteStep(output, sampledTokens, null);

    /// <param name="logprobs">What the runner reported for requests that asked for logprobs; null when none did.</param>
    public void CompleteStep(SchedulerOutput output, ReadOnlySpan<int> sampledTokens, StepLogprobs? logprobs)
    {
        var chunks = output.Chunks;
        if (logprobs is not null)
            KeepPromptLogprobs(chunks, logprobs);
        var wasLive = Buffer(ref _wasLive, chunks.Length);
        for (int k = 0; k < chunks.Length; k++)
            wasLive[k] = chunks[k].Sequence.Status == SequenceStatus.Running;
        Scheduler.Update(output, sampledTokens);
        NumSteps++;

        double now = Clock.Now;
        for (int k = 0; k < chunks.Length; k++)
            if (wasLive[k] && chunks[k].SamplesToken)
                EmitToken(chunks[k].Sequence, sampledTokens[k], now, logprobs?.Sampled[k]);
    }

    /// <summary>Prompt logprobs arrive chunk by chunk (chunked prefill) and again after a recompute; the sequence keeps them by position.</summary>
    private static void KeepPromptLogprobs(ImmutableArray<ScheduledChunk> chunks, StepLogprobs logprobs)
    {
        for (int k = 0; k < chunks.Length; k++)
        {
            if (logprobs.Prompt[k] is not { } entries)
                continue;
            var seq = chunks[k].Sequence;
            seq.PromptLogprobs ??= new TokenLogprob?[seq.NumPromptTokens];
            foreach (var (position, logprob) in entries)
                seq.PromptLogprobs[position] = logprob;
        }
    }

    private void EmitToken(Sequence seq, int tokenId, double now, TokenLogprob? logprob = null)
    {
        double interTokenLatency = 0;
        if (double.IsNaN(seq.FirstTokenTime))
        {
            seq.FirstTokenTime = now;
            PromptTokensTotal += seq.NumPromptTokens;
        }
        else
        {
            interTokenLatency = now - seq.LastTokenTime;
        }
        seq.LastTokenTime = now;
        GenerationTokensTotal++;

        var reason = seq.FinishReason;
        string delta = "";
        if (_texts.TryGetValue(seq.RequestId, out var text))
        {
            // A token stop (EOS, stop_token_ids) finishes with Stop inside the scheduler; its text is not shown.
            bool stoppedByToken = reason == FinishReason.Stop;
            delta = text.Add(tokenId, decodeToken: !stoppedByToken, isLast: reason != FinishReason.None, out bool stopStringHit);
            if (stopStringHit)
            {
                // vLLM: a stop string wins over length; finishing here frees the blocks now.
                if (reason == FinishReason.None)
                    Scheduler.Finish(seq, FinishReason.Stop);
                seq.FinishReason = reason = FinishReason.Stop;
            }
            if (reason != FinishReason.None)
                _texts.Remove(seq.RequestId);
        }
        if (reason != FinishReason.None)
            seq.FinishedTime = now;
        _sink.OnOutput(new RequestOutput(seq, tokenId, seq.NumOutputTokens, delta, reason, now, interTokenLatency) { Logprob = logprob });
    }

    private void EmitEnd(Sequence seq, FinishReason reason, Exception? error)
    {
        string delta = _texts.Remove(seq.RequestId, out var text) && error is null ? text.Flush() : "";
        double now = Clock.Now;
        seq.FinishedTime = now;
        _sink.OnOutput(new RequestOutput(seq, IModelRunner.NoToken, seq.NumOutputTokens, delta, reason, now, 0, error));
    }

    private void FailStep(SchedulerOutput output, Exception error)
    {
        foreach (var chunk in output.Chunks)
            if (Scheduler.Finish(chunk.Sequence, FinishReason.Abort))
                EmitEnd(chunk.Sequence, FinishReason.Abort, error);
    }

    private static Span<T> Buffer<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
            buffer = new T[Math.Max(length, buffer.Length * 2)];
        return buffer.AsSpan(0, length);
    }
}

/// <summary>One <see cref="EngineCore.Step"/>, seconds: scheduling, the runner (forward and sampling), and the update with its outputs (detokenising, stop checks, emitting).</summary>
public readonly record struct StepTimings(double ScheduleSeconds, double ExecuteSeconds, double UpdateSeconds);

/// <summary>A request in transit between replicas: its sequence, output-text state and KV copy (either may be absent).</summary>
internal sealed record DetachedSequence(Sequence Sequence, OutputText? Text, KvBlocks? Kv);
