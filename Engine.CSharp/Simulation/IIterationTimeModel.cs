using OServe.Engine.Scheduling;

namespace OServe.Engine.Simulation;

/// <summary>
/// How long one engine step of a replica takes: the simulated executor's only source of time.
/// The planner's cost model implements it (<see cref="CostModelIterationTime"/>); tests use a fixed time.
/// </summary>
public interface IIterationTimeModel
{
    double StepSeconds(SchedulerOutput output);
}

/// <summary>Every step takes the same time, whatever it runs (known-answer tests).</summary>
public sealed class FixedIterationTime(double seconds) : IIterationTimeModel
{
    public double StepSeconds(SchedulerOutput output) => seconds;
}
