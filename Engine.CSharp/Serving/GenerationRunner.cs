using System.Diagnostics;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>
/// Admits a parsed request into the engine. It waits for the engine's first event before anything is
/// written to the client, so that an admission rejection (whether the engine throws at the call or at
/// the first read) still becomes a 429/503 with Retry-After rather than a broken stream.
/// </summary>
public sealed class GenerationRunner(IInferenceEngine engine, ServingMetrics metrics, ServeOptions options, TimeProvider time, Func<double> engineClock)
{
    private int _numInFlight;

    public int NumInFlight => Volatile.Read(ref _numInFlight);

    /// <param name="arrivalTimestamp">When the HTTP request arrived (<paramref name="time"/>'s timestamp); latencies count from it.</param>
    /// <param name="cancellationToken">The client's connection: when it goes, the engine aborts the request.</param>
    public async Task<ActiveGeneration> StartAsync(ParsedRequest parsed, string idPrefix, long arrivalTimestamp, CancellationToken cancellationToken)
    {
        if (options.MaxConcurrentRequests is { } cap && Interlocked.Increment(ref _numInFlight) > cap)
        {
            Interlocked.Decrement(ref _numInFlight);
            throw OpenAIErrorException.Overloaded(options.RejectStatusCode,
                $"The server is at its limit of {cap} concurrent requests; retry later.", options.RetryAfter);
        }
        var release = options.MaxConcurrentRequests is null ? () => { } : new Action(() => Interlocked.Decrement(ref _numInFlight));
        var id = $"{idPrefix}-{Guid.NewGuid():N}";
        var request = new GenerationRequest(id, parsed.PromptTokens, parsed.Sampling) { ArrivalTime = engineClock() };
        IAsyncEnumerator<GenerationEvent>? events = null;
        try
        {
            events = engine.GenerateAsync(request, cancellationToken).GetAsyncEnumerator(cancellationToken);
            if (!await events.MoveNextAsync())
                throw new InvalidOperationException($"The engine ended request {id} without any event.");
            var created = time.GetUtcNow().ToUnixTimeSeconds();
            return new ActiveGeneration(id, created, parsed, events, metrics, time, arrivalTimestamp, release);
        }
        catch (Exception e)
        {
            if (events is not null)
                await events.DisposeAsync();
            release();
            if (e is AdmissionRejectedException rejected)
                throw OpenAIErrorException.Overloaded(options.RejectStatusCode, rejected.Message, rejected.RetryAfter);
            throw;
        }
    }

    /// <summary>Monotonic seconds: the engine clock when the host supplies none.</summary>
    public static double MonotonicSeconds() => Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
}

/// <summary>
/// A request the engine accepted, its first event already read. <see cref="ReadAllAsync"/> replays it
/// and the rest, recording TTFT, inter-token and end-to-end latency on the way. Disposing it (done by
/// the response, also when the client left) ends the engine's stream and frees the admission slot.
/// </summary>
public sealed class ActiveGeneration : IAsyncDisposable
{
    private readonly IAsyncEnumerator<GenerationEvent> _events;
    private readonly ServingMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly long _arrivalTimestamp;
    private readonly Action _release;
    private int _isDisposed;

    internal ActiveGeneration(string id, long created, ParsedRequest request, IAsyncEnumerator<GenerationEvent> events,
        ServingMetrics metrics, TimeProvider time, long arrivalTimestamp, Action release)
    {
        (Id, Created, Request, _events, _metrics, _time, _arrivalTimestamp, _release) =
            (id, created, request, events, metrics, time, arrivalTimestamp, release);
    }

    public string Id { get; }
    public long Created { get; }
    public ParsedRequest Request { get; }

    /// <summary>Every event, the finished one last; throws if the engine's stream ends without one.</summary>
    public async IAsyncEnumerable<GenerationEvent> ReadAllAsync()
    {
        var numOutputTokens = 0;
        var lastTokenTimestamp = _arrivalTimestamp;
        var current = _events.Current;
        while (true)
        {
            var now = _time.GetTimestamp();
            // An event carries a new token when the output count moves; a bare finish event does not.
            if (current.NumOutputTokens > numOutputTokens)
            {
                if (numOutputTokens == 0)
                    _metrics.ObserveFirstToken(_time.GetElapsedTime(_arrivalTimestamp, now));
                else
                    _metrics.ObserveInterToken(_time.GetElapsedTime(lastTokenTimestamp, now));
                (numOutputTokens, lastTokenTimestamp) = (current.NumOutputTokens, now);
            }
            if (current.IsFinished)
                _metrics.ObserveFinished(_time.GetElapsedTime(_arrivalTimestamp, now), current.FinishReason);
            yield return current;
            if (current.IsFinished)
                yield break;
            if (!await _events.MoveNextAsync())
                throw new InvalidOperationException($"The engine ended request {Id} without a finish reason.");
            current = _events.Current;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _isDisposed, 1) != 0)
            return;
        try { await _events.DisposeAsync(); }
        finally { _release(); }
    }
}
