using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// Step time of the engine a profile was measured on (<c>oserve profile</c>), for one unsharded
/// replica of it: the profile's linear model over the step's <see cref="BatchShape"/>, plus the
/// measured residuals of its <see cref="StepTimeTable"/> when the profile has its points. This is
/// how the simulator stands in for this machine's real engine (fidelity runs).
/// </summary>
public sealed class MeasuredIterationTime : IIterationTimeModel
{
    private static readonly ReplicaConfig Unsharded = new(Hardware.h100, 1, 1, false);
    private readonly CostCoefficients _k;

    /// <param name="points">The profile's measured grid; null or empty: the linear model alone.</param>
    public MeasuredIterationTime(CostCoefficients coefficients, IReadOnlyList<MeasuredStep>? points = null)
    {
        if (!CostCoefficientsModule.isMeasured(coefficients))
            throw new ArgumentException("the coefficients hold no measured step-time terms (prefillSecPerToken, decodeSecPerSeq, ...); write them with `oserve profile`");
        _k = coefficients;
        if (points is { Count: > 0 })
            Table = new StepTimeTable(points, Linear);
    }

    /// <summary>The measured residuals in use, if any.</summary>
    public StepTimeTable? Table { get; }

    public double StepSeconds(SchedulerOutput output) => Seconds(BatchShape.Of(output));

    /// <summary>The profile's linear model alone.</summary>
    public double Linear(BatchShape s) =>
        ReplicaCost.measuredStepSec(_k, Unsharded, s.PrefillTokens, s.NumPrefills, s.AttentionPairs, s.NumDecodes, s.DecodeContextTokens);

    public double Seconds(BatchShape s)
    {
        double linear = Linear(s);
        if (Table is null) return linear;
        // A residual can only take away what the linear model put in; a step never costs nothing.
        return Math.Max(linear + Table.Residual(s), 0.25 * linear);
    }
}
