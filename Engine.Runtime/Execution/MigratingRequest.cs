namespace OServe.Engine.Execution;

/// <summary>
/// A request between two replicas (see <see cref="AsyncEngine.DetachAllAsync"/>): its open event
/// stream, its scheduler state and, when it was running, a copy of its KV cache entries.
/// </summary>
public sealed class MigratingRequest
{
    internal MigratingRequest(AsyncEngine.RequestHandle handle, DetachedSequence? detached)
    {
        Handle = handle;
        Detached = detached;
    }

    internal AsyncEngine.RequestHandle Handle { get; }
    internal DetachedSequence? Detached { get; }

    public GenerationRequest Request => Handle.Request;
    public string RequestId => Handle.Request.RequestId;

    /// <summary>Tokens whose KV entries travel with the request (0: it recomputes on the target).</summary>
    public int NumKvTokens => Detached?.Kv?.NumTokens ?? 0;

    public long KvBytes => Detached?.Kv?.Bytes ?? 0;

    public int NumOutputTokens => Detached?.Sequence.NumOutputTokens ?? 0;

    private int _kvTaken;

    /// <summary>
    /// For moving the request out of this process: its KV entries (the caller owns them now; null
    /// when it carries none), after which only <see cref="HandOff"/> may end it, not an adoption.
    /// </summary>
    public KvBlocks? TakeKv() =>
        Interlocked.Exchange(ref _kvTaken, 1) == 1 ? null : Detached?.Kv ?? Handle.TakeResumeKv();

    /// <summary>
    /// Ends the request's open stream with <paramref name="movedTo"/>, which its reader gets as the
    /// stream's error: the request goes on in another process (whose address the exception
    /// carries), so this one is done with it. Tokens already in the stream are read first.
    /// </summary>
    public void HandOff(Exception movedTo)
    {
        ArgumentNullException.ThrowIfNull(movedTo);
        Handle.Events.Writer.TryComplete(movedTo);
        Handle.Registration.Dispose();
    }
}
