using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// Step time of the engine a profile was measured on (<c>oserve profile</c>), for one unsharded
/// replica of it: the profile's linear model over the step's <see cref="BatchShape"/>. This is how
/// the simulator stands in for this machine's real engine (fidelity runs).
/// </summary>
public sealed class MeasuredIterationTime : IIterationTimeModel
{
    private static readonly ReplicaConfig Unsharded = new(Hardware.h100, 1, 1, false);
    private readonly CostCoefficients _k;

    public MeasuredIterationTime(CostCoefficients coefficients)
    {
        if (!CostCoefficientsModule.isMeasured(coefficients))
            throw new ArgumentException("the coefficients hold no measured step-time terms (prefillSecPerToken, decodeSecPerSeq, ...); write them with `oserve profile`");
        _k = coefficients;
    }

    public double StepSeconds(SchedulerOutput output) => Seconds(BatchShape.Of(output));

    public double Seconds(BatchShape s) =>
        ReplicaCost.measuredStepSec(_k, Unsharded, s.PrefillTokens, s.NumPrefills, s.AttentionPairs, s.NumDecodes, s.DecodeContextTokens);
}
