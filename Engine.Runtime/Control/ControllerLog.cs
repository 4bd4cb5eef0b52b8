namespace OServe.Engine.Control;

/// <summary>
/// The controller's observable log: an in-memory list readers can snapshot, an event for live
/// views, and an optional writer that gets one line per entry.
/// </summary>
public sealed class ControllerLog(TextWriter? sink = null)
{
    private readonly List<ControllerEvent> _events = [];
    private readonly Lock _lock = new();

    /// <summary>Raised after an entry is added, on the controller's thread; handlers must be quick.</summary>
    public event Action<ControllerEvent>? Appended;

    public void Append(ControllerEvent e)
    {
        lock (_lock)
        {
            _events.Add(e);
            sink?.WriteLine(e.Describe());
        }
        Appended?.Invoke(e);
    }

    public IReadOnlyList<ControllerEvent> Events
    {
        get { lock (_lock) return _events.ToArray(); }
    }

    public IReadOnlyList<T> OfType<T>() where T : ControllerEvent
    {
        lock (_lock) return _events.OfType<T>().ToArray();
    }
}
