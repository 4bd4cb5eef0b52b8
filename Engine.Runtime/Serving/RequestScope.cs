namespace OServe.Engine.Serving;

/// <summary>
/// One HTTP request's cancellation: the client's connection (RequestAborted) and the server's time
/// budget for the request (<see cref="ServeOptions.RequestTimeout"/>), as one token that tokenizing
/// and generation both honour. Disposed with the response.
/// </summary>
public sealed class RequestScope : IDisposable
{
    private readonly CancellationTokenSource _budget;
    private readonly CancellationToken _client;

    public RequestScope(CancellationToken client, TimeSpan? timeout)
    {
        _client = client;
        _budget = CancellationTokenSource.CreateLinkedTokenSource(client);
        Timeout = timeout;
        if (timeout is { } limit)
            _budget.CancelAfter(limit);
    }

    public TimeSpan? Timeout { get; }

    /// <summary>Fires when the client leaves or the time budget runs out.</summary>
    public CancellationToken Token => _budget.Token;

    /// <summary>The budget ran out while the client was still there.</summary>
    public bool IsTimedOut => _budget.IsCancellationRequested && !_client.IsCancellationRequested;

    /// <summary>The error a request gets for running past its budget.</summary>
    public OpenAIErrorException TimedOut(int numOutputTokens = 0) =>
        new(StatusCodes.Status408RequestTimeout,
            $"the request ran past this server's limit of {Timeout?.TotalSeconds:0.###} s per request (--request-timeout) and was aborted after {numOutputTokens} generated tokens",
            "timeout_error", code: "request_timeout");

    /// <summary>Runs <paramref name="work"/>, turning a cancellation by the time budget into <see cref="TimedOut"/>.</summary>
    public T Run<T>(Func<T> work)
    {
        try
        {
            return work();
        }
        catch (OperationCanceledException) when (IsTimedOut)
        {
            throw TimedOut();
        }
    }

    public void Dispose() => _budget.Dispose();
}
