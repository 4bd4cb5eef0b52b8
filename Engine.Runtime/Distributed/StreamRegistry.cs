using System.Collections.Concurrent;

namespace OServe.Engine.Distributed;

/// <summary>
/// The front end's open worker streams by node, so that when membership declares a worker dead
/// every stream on it breaks at once (and resumes elsewhere) instead of waiting for Orleans'
/// response timeout on each call.
/// </summary>
internal sealed class StreamRegistry
{
    private readonly ConcurrentDictionary<long, (string Node, CancellationTokenSource Source)> _open = new();
    private long _next;

    public long Register(string node, CancellationTokenSource source)
    {
        long id = Interlocked.Increment(ref _next);
        _open[id] = (node, source);
        return id;
    }

    public void Unregister(long id) => _open.TryRemove(id, out _);

    /// <summary>Cancels the streams open on <paramref name="node"/>; returns how many.</summary>
    public int CancelNode(string node)
    {
        int n = 0;
        foreach (var (id, (streamNode, source)) in _open.ToArray())
        {
            if (streamNode != node || !_open.TryRemove(id, out _))
                continue;
            try { source.Cancel(); n++; }
            catch (ObjectDisposedException) { } // the stream ended meanwhile
        }
        return n;
    }
}
