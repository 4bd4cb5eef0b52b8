using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>
/// One sequence the engine accepted, its first event already read. <see cref="ReadAllAsync"/> replays
/// it and the rest, recording TTFT, inter-token and end-to-end latency on the way. Disposing it (done
/// by the response, also when the client left) ends the engine's stream and frees the admission slot;
/// a sequence that never finished is counted as aborted then.
/// </summary>
public sealed class ActiveGeneration : IAsyncDisposable
{
    private readonly IAsyncEnumerator<GenerationEvent> _events;
    private readonly ServingMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly long _arrivalTimestamp;
    private readonly Action _release;
    private readonly RequestScope _scope;
    private int _numOutputTokens;
    private volatile bool _isFinished;
    private int _isDisposed;

    internal ActiveGeneration(string id, long created, ParsedRequest request, IAsyncEnumerator<GenerationEvent> events,
        ServingMetrics metrics, TimeProvider time, long arrivalTimestamp, Action release, RequestScope scope)
    {
        (Id, Created, Request, _events, _metrics, _time, _arrivalTimestamp, _release, _scope) =
            (id, created, request, events, metrics, time, arrivalTimestamp, release, scope);
    }

    public string Id { get; }
    public long Created { get; }
    public ParsedRequest Request { get; }

    /// <summary>
    /// Every event, the finished one last; throws if the engine's stream ends without one, and
    /// <see cref="OpenAIErrorException"/> (408) when the request's time budget ran out.
    /// </summary>
    public async IAsyncEnumerable<GenerationEvent> ReadAllAsync()
    {
        var lastTokenTimestamp = _arrivalTimestamp;
        var current = _events.Current;
        while (true)
        {
            var now = _time.GetTimestamp();
            // An event carries a new token when the output count moves; a bare finish event does not.
            if (current.NumOutputTokens > _numOutputTokens)
            {
                if (_numOutputTokens == 0)
                    _metrics.ObserveFirstToken(_time.GetElapsedTime(_arrivalTimestamp, now));
                else
                    _metrics.ObserveInterToken(_time.GetElapsedTime(lastTokenTimestamp, now));
                (_numOutputTokens, lastTokenTimestamp) = (current.NumOutputTokens, now);
            }
            if (current.IsFinished)
            {
                _isFinished = true;
                _metrics.ObserveFinished(_time.GetElapsedTime(_arrivalTimestamp, now), current.FinishReason);
            }
            yield return current;
            if (current.IsFinished)
                yield break;
            if (!await MoveNextAsync())
                throw new InvalidOperationException($"The engine ended request {Id} without a finish reason.");
            current = _events.Current;
        }
    }

    private async ValueTask<bool> MoveNextAsync()
    {
        try
        {
            return await _events.MoveNextAsync();
        }
        catch (OperationCanceledException) when (_scope.IsTimedOut)
        {
            throw _scope.TimedOut(_numOutputTokens);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _isDisposed, 1) != 0)
            return;
        try
        {
            await _events.DisposeAsync();
        }
        finally
        {
            _release();
            // The client left, the time budget ran out, or a sibling choice failed: vLLM counts these as aborted.
            if (!_isFinished)
                _metrics.ObserveAborted();
        }
    }
}
