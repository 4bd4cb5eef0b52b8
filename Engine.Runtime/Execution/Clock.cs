using System.Diagnostics;

namespace OServe.Engine.Execution;

/// <summary>The engine's notion of now, in seconds. Real engines read a monotonic clock; the simulator a virtual one.</summary>
public interface IClock
{
    double Now { get; }
}

/// <summary>Monotonic wall time in seconds since the clock was created.</summary>
public sealed class SystemClock : IClock
{
    private readonly long _start = Stopwatch.GetTimestamp();

    public double Now => Stopwatch.GetElapsedTime(_start).TotalSeconds;
}

/// <summary>Time that moves only when told to (the simulator's clock). Never goes backwards.</summary>
public sealed class VirtualClock(double start = 0) : IClock
{
    public double Now { get; private set; } = start;

    public void AdvanceTo(double time)
    {
        if (double.IsNaN(time) || time < Now)
            throw new ArgumentOutOfRangeException(nameof(time), $"virtual clock cannot move from {Now} back to {time}");
        Now = time;
    }

    public void Advance(double seconds) => AdvanceTo(Now + seconds);
}
