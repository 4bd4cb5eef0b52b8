using System.Collections;

namespace OServe.Engine.Scheduling;

/// <summary>
/// A prompt of a given length whose token values do not matter (simulation): costs no memory
/// per token. Every position reads as token 3.
/// </summary>
public sealed class SyntheticPrompt(int length) : IReadOnlyList<int>
{
    public int Count { get; } = length >= 0 ? length : throw new ArgumentOutOfRangeException(nameof(length), $"prompt length {length} is negative");

    public int this[int index] => (uint)index < (uint)Count ? 3 : throw new ArgumentOutOfRangeException(nameof(index));

    public IEnumerator<int> GetEnumerator()
    {
        for (int i = 0; i < Count; i++)
            yield return 3;
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
