using System.Collections.Concurrent;

namespace OServe.Engine.Demo;

/// <summary>
/// The no-loss check of one replay: the load generator's count of requests sent and completed,
/// against the server's own record of which request ids finished and how often. A request is lost
/// when the client did not get it back complete, duplicated when the server finished its id twice
/// (a switch that served it on two replicas).
/// </summary>
public sealed class RequestAccounting
{
    private readonly ConcurrentDictionary<string, int> _finished = new(StringComparer.Ordinal);

    /// <summary>Called once per request the engine finished (PlanRuntime.RequestFinished).</summary>
    public void Finished(string requestId) => _finished.AddOrUpdate(requestId, 1, (_, n) => n + 1);

    public AccountingResult Check(int sent, int clientCompleted) => AccountingResult.Of(sent, clientCompleted, _finished);

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) until the server has finished <paramref name="count"/>
    /// distinct requests: a client can read a stream's last chunk just before the engine records its end.
    /// </summary>
    public async Task WaitForAsync(int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (_finished.Count < count && DateTime.UtcNow < deadline)
            await Task.Delay(10, cancellationToken);
    }
}

/// <param name="Sent">requests the load generator sent.</param>
/// <param name="ClientCompleted">requests it got back complete.</param>
/// <param name="ServerFinished">distinct request ids the server finished.</param>
/// <param name="Duplicated">request ids the server finished more than once.</param>
public sealed record AccountingResult(int Sent, int ClientCompleted, int ServerFinished, int Duplicated)
{
    public int Lost => Sent - ClientCompleted;
    public bool Ok => Lost == 0 && Duplicated == 0 && ServerFinished == Sent;

    public static AccountingResult Of(int sent, int clientCompleted, IReadOnlyDictionary<string, int> finishedPerId) =>
        new(sent, clientCompleted, finishedPerId.Count, finishedPerId.Values.Count(n => n > 1));

    public string Describe() => Ok
        ? $"{ClientCompleted}/{Sent} completed, each finished once by the server"
        : $"{ClientCompleted}/{Sent} completed ({Lost} LOST), server finished {ServerFinished} distinct requests, {Duplicated} DUPLICATED";
}
