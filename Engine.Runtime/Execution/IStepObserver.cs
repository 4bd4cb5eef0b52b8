
namespace OServe.Engine.Execution;

/// <summary>One step of the real engine as it ran: clock times around schedule, forward, update and emit, and the batch it computed.</summary>
public readonly record struct StepRecord(double StartTime, double EndTime, BatchShape Shape)
{
    public double Seconds => EndTime - StartTime;
}

/// <summary>
/// Sees every step <see cref="EngineCore.Step"/> runs, on the engine loop thread, right after the
/// step. For measuring the engine while it serves (<c>oserve fidelity</c>); keep it cheap.
/// </summary>
public interface IStepObserver
{
    void OnStep(in StepRecord step);
}

/// <summary>Keeps every step in order. Written by the loop thread, read once the run is over (or any time: reads take a copy).</summary>
public sealed class StepLog : IStepObserver
{
    private readonly List<StepRecord> _steps = [];
    private readonly Lock _gate = new();

    public void OnStep(in StepRecord step)
    {
        lock (_gate) _steps.Add(step);
    }

    public IReadOnlyList<StepRecord> Snapshot()
    {
        lock (_gate) return [.. _steps];
    }
}
