using OServe.Contracts;
using OServe.Planner.Workload;

namespace OServe.Engine.Control;

/// <summary>
/// Counts arrivals per request type in the current window. A request is typed with the planner's
/// own <see cref="RequestTyping.classify"/> (nearest centroid in log input/output length) against the
/// plan's request types, by its prompt length and max_tokens, as the dispatcher types it.
/// </summary>
public sealed class ArrivalRecorder
{
    private readonly RequestType[] _types;
    private readonly long[] _counts;
    private readonly Lock _lock = new();

    public ArrivalRecorder(IReadOnlyList<RequestTypeSpec> types)
    {
        if (types.Count == 0) throw new ArgumentException("request_types: a plan needs at least one request type to record arrivals by", nameof(types));
        TypeNames = types.Select(t => t.Name).ToArray();
        // classify reads only the centroids; the other fields describe a fitted cluster and are unused here.
        _types = types.Select((t, i) => new RequestType(i, t.InputTokens, t.OutputTokens, t.InputTokens, t.OutputTokens, 0, 0, 0)).ToArray();
        _counts = new long[types.Count];
    }

    public IReadOnlyList<string> TypeNames { get; }

    /// <summary>Index (into <see cref="TypeNames"/>) of the type of a request with these lengths.</summary>
    public int Classify(int promptTokens, int outputTokens) => RequestTyping.classify(_types, promptTokens, outputTokens);

    public void Record(int promptTokens, int outputTokens)
    {
        var j = Classify(promptTokens, outputTokens);
        lock (_lock) _counts[j]++;
    }

    /// <summary>The counts since the last <see cref="TakeCounts"/>, leaving the window open.</summary>
    public long[] PeekCounts()
    {
        lock (_lock) return (long[])_counts.Clone();
    }

    /// <summary>The counts since the last call, and a fresh window.</summary>
    public long[] TakeCounts()
    {
        lock (_lock)
        {
            var counts = (long[])_counts.Clone();
            Array.Clear(_counts);
            return counts;
        }
    }
}
