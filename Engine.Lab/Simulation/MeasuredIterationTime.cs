using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// Step time of the engine a profile was measured on (<c>oserve profile</c>), for one unsharded
/// replica of it: the profile's linear model over the step's <see cref="BatchShape"/>, plus the
/// measured residuals of its <see cref="StepTimeTable"/> when the profile has its points, times the
/// after-idle factor for a step after an idle wait and the serving factor (steps are slower while
/// the HTTP frontend shares the cores). This is how the simulator stands in for this machine's
/// real engine (fidelity runs).
/// </summary>
public sealed class MeasuredIterationTime : IIterationTimeModel
{
    private readonly CostCoefficients _k;

    /// <summary>An idle wait at least this long before a step makes it an after-idle step (the profiler measures after 100 ms).</summary>
    public const double AfterIdleGapSeconds = 0.050;

    /// <param name="points">The profile's measured grid; null or empty: the linear model alone.</param>
    /// <param name="afterIdleFactor">How much longer a step takes right after the engine sat idle (the profile's afterIdleFactor).</param>
    /// <param name="serving">How much longer steps take while the engine serves HTTP traffic than when profiled alone; null: no different.</param>
    /// <param name="frontendSeconds">Time a request spends in the HTTP frontend before the engine sees it, and in delivery.</param>
    public MeasuredIterationTime(CostCoefficients coefficients, IReadOnlyList<MeasuredStep>? points = null,
        double afterIdleFactor = 1, ServingFactors? serving = null, double frontendSeconds = 0)
        : this(coefficients, afterIdleFactor, serving ?? ServingFactors.None, frontendSeconds)
    {
        if (points is { Count: > 0 })
            Table = new StepTimeTable(points, Linear);
    }

    private MeasuredIterationTime(CostCoefficients coefficients, double afterIdleFactor, ServingFactors serving, double frontendSeconds)
    {
        if (!double.IsFinite(afterIdleFactor) || afterIdleFactor <= 0)
            throw new ArgumentException($"afterIdleFactor must be a positive number, got {afterIdleFactor}");
        if (!(double.IsFinite(serving.DecodeOnly) && serving.DecodeOnly > 0 && double.IsFinite(serving.WithPrompt) && serving.WithPrompt > 0))
            throw new ArgumentException($"serving step factors must be positive numbers, got {serving}");
        if (!double.IsFinite(frontendSeconds) || frontendSeconds < 0)
            throw new ArgumentException($"frontendSec must be a number >= 0, got {frontendSeconds}");
        if (!CostCoefficientsModule.isMeasured(coefficients))
            throw new ArgumentException("the coefficients hold no measured step-time terms (prefillSecPerToken, decodeSecPerSeq, ...); write them with `oserve profile`");
        AfterIdleFactor = afterIdleFactor;
        Serving = serving;
        FrontendSeconds = frontendSeconds;
        _k = coefficients;
    }

    /// <summary>The measured residuals in use, if any.</summary>
    public StepTimeTable? Table { get; private init; }

    public double AfterIdleFactor { get; }
    public ServingFactors Serving { get; }
    public double FrontendSeconds { get; }

    /// <summary>The same profile (its residual table shared) with the serving terms replaced: what <c>oserve profile</c> calibrates.</summary>
    public MeasuredIterationTime WithServing(ServingFactors serving, double frontendSeconds) =>
        new(_k, AfterIdleFactor, serving, frontendSeconds) { Table = Table };

    public double StepSeconds(SchedulerOutput output) => Seconds(BatchShape.Of(output));

    public double StepSeconds(SchedulerOutput output, double idleSeconds) => Seconds(BatchShape.Of(output), idleSeconds);

    /// <summary>A step of this shape after <paramref name="idleSeconds"/> without one.</summary>
    public double Seconds(BatchShape s, double idleSeconds) =>
        idleSeconds >= AfterIdleGapSeconds ? AfterIdleFactor * Seconds(s) : Seconds(s);

    /// <summary>The profile's linear model alone.</summary>
    public double Linear(BatchShape s) =>
        _k.IterationOverheadSec + StepTimeModel.LinearWorkSec(_k, 1, s.ToStep());

    /// <summary>A back-to-back step of this shape while serving.</summary>
    public double Seconds(BatchShape s)
    {
        double linear = Linear(s);
        // A residual can only take away what the linear model put in; a step never costs nothing.
        double alone = Table is null ? linear : Math.Max(linear + Table.Residual(s), 0.25 * linear);
        return Serving.For(s) * alone;
    }
}

/// <summary>
/// How much longer an engine's steps take while it serves over HTTP than when profiled alone, for
/// decode-only steps and for steps with prompt tokens: the frontend's threads (tokenising arriving
/// prompts, streaming tokens) share the cores, and long prefill steps are hit harder.
/// </summary>
public readonly record struct ServingFactors(double DecodeOnly, double WithPrompt)
{
    public static ServingFactors None => new(1, 1);

    public double For(in BatchShape s) => s.NumPrefills > 0 ? WithPrompt : DecodeOnly;

    public override string ToString() => $"decode-only x{DecodeOnly:F3}, with prompts x{WithPrompt:F3}";
}
