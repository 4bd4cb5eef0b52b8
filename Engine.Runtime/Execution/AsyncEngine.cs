using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Execution;

/// <summary>
/// One replica behind <see cref="IInferenceEngine"/>. A single loop thread owns the
/// <see cref="EngineCore"/> (scheduler, runner); request threads never touch it. Requests cross
/// in through a bounded admission channel (full = rejection with Retry-After), aborts through a
/// queue, and each request's events come back through its own channel. Shutdown: complete the
/// admission writer, let the loop drain every admitted request, await the loop.
/// </summary>
public sealed class AsyncEngine : IInferenceEngine, IRequestMetricsSource, IAsyncDisposable
{
    private readonly AsyncEngineOptions _options;
    private readonly IEngineTokenizer _tokenizer;
    private readonly EngineCore _core;
    private readonly Channel<RequestHandle> _admission;
    private readonly ConcurrentQueue<RequestHandle> _aborts = new();
    private readonly Queue<Action> _loopWork = new();
    private readonly Lock _loopWorkGate = new();
    private bool _loopExited;
    private readonly ConcurrentDictionary<string, RequestHandle> _live = new(StringComparer.Ordinal);
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly TaskCompletionSource _loopDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly int _maxSchedulerWaiting;
    private volatile EngineSnapshot _snapshot = new(0, 0, 0, 0, 0);
    private volatile bool _stopping;

    public AsyncEngine(AsyncEngineOptions options, SchedulerConfig schedulerConfig, IModelRunner runner, IEngineTokenizer tokenizer, IClock? clock = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.AdmissionCapacity);
        _options = options;
        _tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        Clock = clock ?? new SystemClock();
        var scheduler = new Scheduler(schedulerConfig, new TokenStopCondition(tokenizer.EndTokenIds));
        _core = new EngineCore(scheduler, runner, Clock, new Sink(this), tokenizer) { StepObserver = options.StepObserver };
        _maxSchedulerWaiting = options.MaxSchedulerWaiting ?? schedulerConfig.MaxNumSeqs;
        _admission = Channel.CreateBounded<RequestHandle>(new BoundedChannelOptions(options.AdmissionCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait, // TryWrite fails when full: we reject rather than wait
            SingleReader = true,
            SingleWriter = false,
        });
        // A pooled thread: one that ran an earlier replica's loop starts with its allocator warm.
        OServe.Models.Parallelism.ComputeThreads.Start(RunLoop);
    }

    /// <summary>Most alternatives a request may ask for per position (vLLM's default max_logprobs).</summary>
    public const int MaxLogprobs = 20;

    public string ModelName => _options.ModelName;
    public int MaxModelLength => _core.Scheduler.Config.MaxModelLen;
    public int? VocabSize => _tokenizer.VocabSize;
    public IClock Clock { get; }

    /// <summary>The loop's fatal error, if it died; in-flight requests got it too.</summary>
    public Exception? Fault { get; private set; }

    public event Action<RequestMetrics>? RequestFinished;

    public int? MaxTokenBytes => _tokenizer.MaxTokenBytes;

    public IReadOnlyList<int> Encode(string text, bool addBos) => _tokenizer.Encode(text, addBos);

    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken) => _tokenizer.Encode(text, addBos, cancellationToken);

    public byte[] TokenBytes(int tokenId) => _tokenizer.TokenBytes(tokenId);

    public string Decode(IReadOnlyList<int> tokenIds) => _tokenizer.Decode(tokenIds);

    public EngineSnapshot Snapshot()
    {
        var snapshot = _snapshot;
        return snapshot with { NumRequestsWaiting = snapshot.NumRequestsWaiting + _admission.Reader.Count };
    }

    /// <summary>
    /// Admits <paramref name="request"/> now (throws <see cref="AdmissionRejectedException"/> when
    /// full or shutting down, <see cref="ArgumentException"/> with the OpenAI field as ParamName
    /// for a bad request) and returns its event stream. Every event but an abort carries one
    /// token; the last one carries the finish reason. Cancelling either token, or leaving the
    /// enumeration early, aborts the request and frees its KV blocks.
    /// </summary>
    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken) =>
        GenerateAsync(request, resumeKv: null, cancellationToken);

    /// <summary>
    /// As <see cref="GenerateAsync(GenerationRequest, CancellationToken)"/>, for a request that moved
    /// here from another process with the KV entries of its first tokens (<see cref="EngineCore.AddRequest(GenerationRequest, int, KvBlocks?)"/>):
    /// only the rest of its prompt is computed. This engine owns <paramref name="resumeKv"/> once
    /// called, admitted or not.
    /// </summary>
    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, KvBlocks? resumeKv, CancellationToken cancellationToken)
    {
        try
        {
            Validate(request);
            cancellationToken.ThrowIfCancellationRequested();
        }
        catch
        {
            resumeKv?.Dispose();
            throw;
        }
        if (request.ArrivalTime <= 0)
            request = request with { ArrivalTime = Clock.Now };
        var handle = new RequestHandle(request, this) { ResumeKv = resumeKv };
        if (!_live.TryAdd(request.RequestId, handle))
        {
            handle.TakeResumeKv()?.Dispose();
            throw new ArgumentException($"request id '{request.RequestId}' is already in flight", "request_id");
        }
        // Registered before the loop can see the handle, so the loop's Complete always disposes it.
        handle.Registration = cancellationToken.Register(
            static state => RequestAbort((RequestHandle)state!), handle);
        if (!_admission.Writer.TryWrite(handle))
        {
            handle.Registration.Dispose();
            _live.TryRemove(request.RequestId, out _);
            handle.TakeResumeKv()?.Dispose();
            throw new AdmissionRejectedException(
                Fault is not null ? $"the engine has failed: {Fault.Message}"
                : _stopping ? "the engine is shutting down"
                : $"the admission queue is full ({_options.AdmissionCapacity} requests waiting); retry later",
                _options.RetryAfter);
        }
        _wake.Set();
        return ReadEvents(handle, cancellationToken);
    }

    /// <summary>Stops admitting, finishes every admitted request, and waits for the loop. Cancelling aborts what is left.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        _stopping = true;
        _admission.Writer.TryComplete();
        _wake.Set();
        using var abortAll = cancellationToken.Register(() =>
        {
            foreach (var handle in _live.Values)
                RequestAbort(handle);
        });
        await _loopDone.Task.ConfigureAwait(false);
    }

    // _wake is deliberately not disposed: a late cancellation callback may still Set it, and it
    // never allocates a kernel handle (nothing reads its WaitHandle).
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private async IAsyncEnumerable<GenerationEvent> ReadEvents(
        RequestHandle handle, CancellationToken admissionToken, [EnumeratorCancellation] CancellationToken enumerationToken = default)
    {
        using var linked = enumerationToken.CanBeCanceled && enumerationToken != admissionToken
            ? CancellationTokenSource.CreateLinkedTokenSource(admissionToken, enumerationToken)
            : null;
        var token = linked?.Token ?? admissionToken;
        bool finished = false;
        try
        {
            await foreach (var ev in handle.Events.Reader.ReadAllAsync(token).ConfigureAwait(false))
            {
                finished |= ev.IsFinished;
                yield return ev;
            }
        }
        finally
        {
            if (!finished)
                RequestAbort(handle); // cancelled, or the consumer stopped reading
        }
    }

    // Static: a request that moved to another replica is aborted there. The handle's lock orders
    // the flag against an owner change, so an abort racing a move reaches the new owner (which
    // checks the flag when it adopts) or the old one (which still has the request).
    private static void RequestAbort(RequestHandle handle)
    {
        AsyncEngine owner;
        lock (handle)
        {
            if (handle.IsAbortRequested)
                return;
            handle.IsAbortRequested = true;
            owner = handle.Owner;
        }
        owner._aborts.Enqueue(handle);
        owner._wake.Set();
    }

    /// <summary>
    /// Live migration, source side: takes every request out of this replica without finishing it
    /// (queued ones too) and hands them over with their KV cache entries when
    /// <paramref name="withKv"/>. Their streams stay open: they continue once another replica
    /// adopts them with <see cref="AdoptAsync"/>. Runs on the loop thread between steps.
    /// A started request with at most <paramref name="finishInPlaceMaxSteps"/> engine steps left
    /// (<see cref="EngineCore.StepsLeft"/>) stays here to finish (0: every request leaves); the
    /// caller then drains this engine (<see cref="StopAsync"/>).
    /// </summary>
    public Task<IReadOnlyList<MigratingRequest>> DetachAllAsync(bool withKv, int finishInPlaceMaxSteps = 0) => OnLoopAsync(() =>
    {
        var moving = new List<MigratingRequest>();
        while (_admission.Reader.TryRead(out var queued))
            moving.Add(new MigratingRequest(queued, null));
        foreach (var handle in _live.Values.ToArray())
        {
            if (moving.Any(m => ReferenceEquals(m.Handle, handle)))
                continue;
            if (finishInPlaceMaxSteps > 0 && _core.StepsLeft(handle.Request.RequestId) is { } left && left <= finishInPlaceMaxSteps)
                continue;
            var detached = _core.Detach(handle.Request.RequestId, withKv);
            if (detached is null)
                continue; // finished in the meantime: its final event is already out
            _live.TryRemove(new KeyValuePair<string, RequestHandle>(handle.Request.RequestId, handle));
            moving.Add(new MigratingRequest(handle, detached));
        }
        foreach (var m in moving)
            _live.TryRemove(new KeyValuePair<string, RequestHandle>(m.RequestId, m.Handle));
        Publish();
        return (IReadOnlyList<MigratingRequest>)moving;
    });

    /// <summary>
    /// Live migration, target side: continues requests detached from another replica. Each one's
    /// event stream resumes from here; a request whose id is already live here, or that this
    /// replica cannot hold, ends with an error rather than vanishing. Runs on the loop thread.
    /// </summary>
    public Task AdoptAsync(IReadOnlyList<MigratingRequest> requests) => OnLoopAsync(() =>
    {
        foreach (var m in requests)
            AdoptOne(m);
        Publish();
        return true;
    });

    private void AdoptOne(MigratingRequest m)
    {
        var handle = m.Handle;
        if (!_live.TryAdd(m.RequestId, handle))
        {
            m.Detached?.Kv?.Dispose();
            Complete(handle, new InvalidOperationException($"request id '{m.RequestId}' is already in flight on the target replica"));
            return;
        }
        bool aborted;
        lock (handle)
        {
            handle.Owner = this;
            aborted = handle.IsAbortRequested;
        }
        try
        {
            if (m.Detached is { } detached)
                _core.Adopt(detached);
            else
                _core.AddRequest(handle.Request, typeIndex: -1, handle.TakeResumeKv());
        }
        catch (Exception error) when (error is ArgumentException or InvalidOperationException)
        {
            Complete(handle, error);
            return;
        }
        if (aborted)
            _core.Abort(m.RequestId);
    }

    /// <summary>Runs <paramref name="work"/> on the loop thread between steps (inline once the loop has exited).</summary>
    private Task<T> OnLoopAsync<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        void Run()
        {
            try { done.SetResult(work()); }
            catch (Exception error) { done.SetException(error); }
        }
        lock (_loopWorkGate)
        {
            if (_loopExited)
            {
                Run();
                return done.Task;
            }
            _loopWork.Enqueue(Run);
        }
        _wake.Set();
        return done.Task;
    }

    private void ProcessLoopWork()
    {
        while (true)
        {
            Action? work;
            lock (_loopWorkGate)
                if (!_loopWork.TryDequeue(out work))
                    return;
            work();
        }
    }

    private void RunLoop()
    {
        try
        {
            while (true)
            {
                _wake.Reset(); // before looking for work, so a Set after the look wakes the Wait below
                ProcessLoopWork();
                ProcessAborts();
                Admit();
                if (_core.HasWork)
                {
                    _core.Step();
                    Publish();
                    continue;
                }
                Publish();
                if (_admission.Reader.Completion.IsCompleted)
                    break; // writer completed and every admitted request has finished
                _wake.Wait();
            }
        }
        catch (Exception error)
        {
            Fault = error;
            _stopping = true;
            _admission.Writer.TryComplete(error);
            foreach (var handle in _live.Values)
                Complete(handle, error);
            while (_admission.Reader.TryRead(out var queued))
            {
                queued.TakeResumeKv()?.Dispose();
                Complete(queued, error);
            }
        }
        finally
        {
            lock (_loopWorkGate)
            {
                _loopExited = true;
                while (_loopWork.TryDequeue(out var work))
                    work();
            }
            _loopDone.TrySetResult();
        }
    }

    private void ProcessAborts()
    {
        // A request still in the admission queue is dropped by Admit; the identity check keeps a
        // stale abort from hitting a newer request that reuses the id.
        while (_aborts.TryDequeue(out var handle))
            if (_live.TryGetValue(handle.Request.RequestId, out var current) && ReferenceEquals(current, handle))
                _core.Abort(handle.Request.RequestId);
    }

    private void Admit()
    {
        while (_core.Scheduler.NumWaiting < _maxSchedulerWaiting && _admission.Reader.TryRead(out var handle))
        {
            var resumeKv = handle.TakeResumeKv();
            if (handle.IsAbortRequested)
            {
                resumeKv?.Dispose();
                var request = handle.Request;
                handle.Events.Writer.TryWrite(new GenerationEvent(request.RequestId, IModelRunner.NoToken, "", FinishReason.Abort, request.PromptTokens.Count, 0));
                Complete(handle, error: null);
                continue;
            }
            try
            {
                _core.AddRequest(handle.Request, typeIndex: -1, resumeKv);
            }
            catch (ArgumentException error)
            {
                Complete(handle, error); // validated at admission; only a scheduler-level rule gets here
            }
        }
    }

    private void Publish()
    {
        var scheduler = _core.Scheduler;
        _snapshot = new EngineSnapshot(
            scheduler.NumRunning, scheduler.NumWaiting, scheduler.BlockManager.Usage,
            _core.PromptTokensTotal, _core.GenerationTokensTotal);
    }

    private void Complete(RequestHandle handle, Exception? error)
    {
        handle.Events.Writer.TryComplete(error);
        _live.TryRemove(new KeyValuePair<string, RequestHandle>(handle.Request.RequestId, handle));
        handle.Registration.Dispose();
    }

    private void OnOutput(in RequestOutput output)
    {
        var seq = output.Sequence;
        if (!_live.TryGetValue(seq.RequestId, out var handle))
            return;
        if (output.Error is not null)
        {
            Complete(handle, output.Error);
            return;
        }
        if (output.TokenId >= 0 && !output.IsFirstToken)
            handle.InterTokenLatencies.Add(output.InterTokenLatency);
        handle.Events.Writer.TryWrite(new GenerationEvent(
            seq.RequestId, output.TokenId, output.TextDelta, output.FinishReason, seq.NumPromptTokens, output.NumOutputTokens)
        {
            Logprob = output.Logprob,
            PromptLogprobs = output.IsFirstToken && seq.Sampling.PromptLogprobs is not null ? seq.PromptLogprobs ?? new TokenLogprob?[seq.NumPromptTokens] : null,
        });
        if (!output.IsFinished)
            return;
        Complete(handle, error: null);
        var handler = RequestFinished;
        if (handler is null)
            return;
        try
        {
            handler(new RequestMetrics(
                seq.RequestId, seq.NumPromptTokens, seq.NumOutputTokens, output.FinishReason, seq.ArrivalTime,
                seq.FirstScheduledTime, seq.FirstTokenTime, seq.LastTokenTime, seq.FinishedTime, seq.NumPreemptions,
                handle.InterTokenLatencies));
        }
        catch (Exception error)
        {
            // A metrics bug must not stop generation for everyone.
            Trace.TraceError($"RequestFinished handler failed for '{seq.RequestId}': {error}");
        }
    }

    private void Validate(GenerationRequest request) => RequestChecks.Validate(request, _tokenizer.VocabSize, MaxModelLength);

    private sealed class Sink(AsyncEngine engine) : IGenerationSink
    {
        public void OnOutput(in RequestOutput output) => engine.OnOutput(output);
    }

    internal sealed class RequestHandle(GenerationRequest request, AsyncEngine owner)
    {
        public GenerationRequest Request { get; } = request;

        /// <summary>The replica serving the request now; changes only under lock(this), by a move.</summary>
        public AsyncEngine Owner { get; set; } = owner;

        public Channel<GenerationEvent> Events { get; } = Channel.CreateUnbounded<GenerationEvent>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        // Set by request threads, read by the loop.
        public volatile bool IsAbortRequested;

        public CancellationTokenRegistration Registration { get; set; }

        /// <summary>Loop thread only.</summary>
        public List<double> InterTokenLatencies { get; } = [];

        /// <summary>KV entries computed elsewhere that the request continues from; taken (and owned) by whoever admits or drops it.</summary>
        private KvBlocks? _resumeKv;
        public KvBlocks? ResumeKv { init => _resumeKv = value; }

        public KvBlocks? TakeResumeKv() => Interlocked.Exchange(ref _resumeKv, null);
    }
}
