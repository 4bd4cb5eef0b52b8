namespace OServe.Engine.Simulation;

/// <summary>
/// One request of a simulated workload: arrival (seconds from the start), prompt and output length
/// (the output length is the trace's, so the simulator knows when a request ends), and the index of
/// its workload type (for per-type metrics; -1 when untyped).
/// </summary>
public readonly record struct SimRequest(int Id, double ArrivalS, int InputTokens, int OutputTokens, int TypeIndex = -1);

/// <summary>
/// The prompt of a simulated request: only its length matters to the scheduler, so positions read
/// a synthetic token instead of an array (a 19k-request trace would otherwise hold 20M ints).
/// </summary>
public sealed class SyntheticPrompt(int length) : IReadOnlyList<int>
{
    public int Count { get; } = length > 0 ? length : throw new ArgumentOutOfRangeException(nameof(length), "a prompt has at least one token");

    public int this[int index] => (uint)index < (uint)Count ? 3 + index % 1000 : throw new ArgumentOutOfRangeException(nameof(index));

    public IEnumerator<int> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return this[i];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
