using System.Collections.Concurrent;
using OServe.Engine.Execution;
using OServe.Models.Parallelism;

namespace OServe.Engine.Distributed;

/// <summary>
/// The KV entries of requests a retiring replica moved out, waiting on their worker for the worker
/// that continues each one: that worker takes them whole when it is this one, or reads them in
/// chunks as <see cref="KvWire"/> bytes (made on the first open), then releases them. An entry
/// nobody claims within <see cref="KeepFor"/> is freed (its request recomputes wherever it went).
/// Thread-safe.
/// </summary>
public sealed class KvParking(TimeSpan keepFor) : IDisposable
{
    private sealed class Entry(KvBlocks kv, DateTime expires)
    {
        public KvBlocks? Kv = kv;
        public byte[]? Bytes;
        public WireKvHeader? Header;
        public DateTime Expires = expires;
    }

    private readonly ConcurrentDictionary<long, Entry> _entries = new();
    private long _next;

    public TimeSpan KeepFor { get; } = keepFor;
    public int Count => _entries.Count;

    /// <summary>Parks <paramref name="kv"/> (now owned here) and returns its ticket id (never 0).</summary>
    public long Park(KvBlocks kv)
    {
        Sweep();
        long id = Interlocked.Increment(ref _next);
        _entries[id] = new Entry(kv, DateTime.UtcNow + KeepFor);
        return id;
    }

    /// <summary>The entry's KV as this process holds it (the caller owns it), or null when gone or already made bytes for a reader elsewhere.</summary>
    public KvBlocks? TakeLocal(long id)
    {
        if (!_entries.TryGetValue(id, out var entry))
            return null;
        lock (entry)
        {
            if (entry.Kv is not { } kv)
                return null;
            _entries.TryRemove(id, out _);
            entry.Kv = null;
            return kv;
        }
    }

    /// <summary>The header of the entry's bytes, made from its KV on the first call (which frees the KV); null when the entry is gone.</summary>
    public WireKvHeader? Open(long id)
    {
        if (!_entries.TryGetValue(id, out var entry))
            return null;
        lock (entry)
        {
            if (entry.Header is null && entry.Kv is { } kv)
            {
                using (kv)
                {
                    entry.Bytes = kv.ToWire(out var header);
                    entry.Header = WireKvHeader.Of(header);
                }
                entry.Kv = null;
            }
            entry.Expires = DateTime.UtcNow + KeepFor; // a reader is at it
            return entry.Header;
        }
    }

    /// <summary>Bytes [offset, offset + length) of an opened entry.</summary>
    public byte[] Read(long id, long offset, int length)
    {
        if (!_entries.TryGetValue(id, out var entry) || entry.Bytes is not { } bytes)
            throw new InvalidOperationException($"KV ticket {id} is not open here (released, expired, or never parked)");
        if (offset < 0 || length < 0 || offset + length > bytes.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset + length}) of KV ticket {id}: it has {bytes.Length}");
        return bytes.AsSpan((int)offset, length).ToArray();
    }

    public void Release(long id)
    {
        if (_entries.TryRemove(id, out var entry))
            Free(entry);
    }

    /// <summary>Frees the entries nobody claimed in time.</summary>
    public void Sweep()
    {
        var now = DateTime.UtcNow;
        foreach (var (id, entry) in _entries)
            if (entry.Expires < now && _entries.TryRemove(id, out _))
                Free(entry);
    }

    private static void Free(Entry entry)
    {
        lock (entry)
        {
            entry.Kv?.Dispose();
            entry.Kv = null;
            entry.Bytes = null;
        }
    }

    public void Dispose()
    {
        foreach (var id in _entries.Keys.ToArray())
            Release(id);
    }
}
