using OServe.Engine.Scheduling;

namespace OServe.Engine.Simulation;

/// <summary>
/// How long one engine step of a replica takes: the simulated executor's only source of time.
/// The planner's cost model implements it (<see cref="CostModelIterationTime"/>); tests use a fixed time.
/// </summary>
public interface IIterationTimeModel
{
    double StepSeconds(SchedulerOutput output);

    /// <param name="idleSeconds">How long the replica sat idle before this step: 0 when it follows another step at once, infinity for its first.</param>
    double StepSeconds(SchedulerOutput output, double idleSeconds) => StepSeconds(output);
}

/// <summary>Every step takes the same time, whatever it runs (known-answer tests).</summary>
public sealed class FixedIterationTime(double seconds) : IIterationTimeModel
{
    public double StepSeconds(SchedulerOutput output) => seconds;
}
