namespace OServe.Engine.Scheduling;

/// <summary>
/// The waiting queue: a ring-buffer deque. FCFS at the back, preempted sequences return at the
/// front so they resume before newer arrivals. Allocation-free once grown.
/// </summary>
public sealed class SequenceQueue : IReadOnlyList<Sequence>
{
    private Sequence?[] _items = new Sequence?[16];
    private int _head;
    private int _count;

    public int Count => _count;

    public Sequence this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count)
                throw new ArgumentOutOfRangeException(nameof(index), $"index {index} outside the queue of {_count}");
            return _items[(_head + index) % _items.Length]!;
        }
    }

    public Sequence PeekFront() => _count > 0 ? _items[_head]! : throw new InvalidOperationException("the waiting queue is empty");

    public void PushBack(Sequence seq)
    {
        GrowIfFull();
        _items[(_head + _count) % _items.Length] = seq;
        _count++;
    }

    public void PushFront(Sequence seq)
    {
        GrowIfFull();
        _head = (_head - 1 + _items.Length) % _items.Length;
        _items[_head] = seq;
        _count++;
    }

    public Sequence PopFront()
    {
        var seq = PeekFront();
        _items[_head] = null;
        _head = (_head + 1) % _items.Length;
        _count--;
        return seq;
    }

    /// <summary>Removes one sequence wherever it is (abort); O(n), rare.</summary>
    public bool Remove(Sequence seq)
    {
        for (int i = 0; i < _count; i++)
        {
            if (!ReferenceEquals(this[i], seq))
                continue;
            for (int j = i; j < _count - 1; j++)
                _items[(_head + j) % _items.Length] = _items[(_head + j + 1) % _items.Length];
            _items[(_head + _count - 1) % _items.Length] = null;
            _count--;
            return true;
        }
        return false;
    }

    public IEnumerator<Sequence> GetEnumerator()
    {
        for (int i = 0; i < _count; i++)
            yield return this[i];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    private void GrowIfFull()
    {
        if (_count < _items.Length)
            return;
        var bigger = new Sequence?[_items.Length * 2];
        for (int i = 0; i < _count; i++)
            bigger[i] = _items[(_head + i) % _items.Length];
        _items = bigger;
        _head = 0;
    }
}
