using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// Step time of one simulated replica from the planner's own step-time model
/// (<see cref="StepTimeModel"/>: measured GPU layer times moved to this GPU, collectives from the
/// cluster file, or a linear CPU profile, or the analytic roofline). Planner and simulator share
/// that one implementation, so a step of one fresh prefill equals <c>ReplicaCost.prefillSec</c> and
/// a step of decodes <c>ReplicaCost.decodeCycleSec</c>.
/// </summary>
public sealed class CostModelIterationTime(CostCoefficients coefficients, ModelSpec model, Links links, ReplicaConfig config) : IIterationTimeModel
{
    private readonly StepTimeModel _step = new(coefficients, model, links, config);

    /// <summary>Where the step times come from (measured table, fitted roofline, linear profile, roofline).</summary>
    public StepTimeModel Model => _step;

    public double StepSeconds(SchedulerOutput output) => Seconds(BatchShape.Of(output));

    public double Seconds(BatchShape s) => _step.Seconds(s.ToStep());

    /// <summary>The step time of a batch described by totals (exposed for tests and calibration).</summary>
    public double Seconds(double prefillTokens, double numPrefills, double attentionPairs, double numDecodes, double decodeContextTokens) =>
        _step.Seconds(new StepShape(prefillTokens, numPrefills, attentionPairs, numDecodes, decodeContextTokens));
}
