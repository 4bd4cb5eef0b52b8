using OServe.Engine.Execution;
using OServe.Engine.Simulation;

namespace OServe.Engine.Profiling;

/// <summary>Steps of one kind: how many, and their mean measured and predicted seconds.</summary>
public sealed record StepClassFigures(string Kind, int Count, double MeanMeasured, double MeanPredicted);

/// <summary>
/// The real engine's steps, as it served a fidelity run, against the step-time model on the same
/// batch shapes. It splits the simulator's error in two: the step-time model (predicted vs measured
/// per step) and everything between steps (loop wake-up, admission, publication to the HTTP
/// streams), which the simulator does not model.
/// </summary>
public sealed record StepComparison(
    int NumSteps, double MeasuredSeconds, double PredictedSeconds, double MeanAbsRelativeError,
    double MedianGapSeconds, double MeanGapSeconds, IReadOnlyList<StepClassFigures> Classes)
{
    /// <summary>Measured over predicted seconds, summed over the steps that came right after an idle gap (the engine waited for work).</summary>
    public double AfterIdleRatio { get; init; } = double.NaN;

    /// <summary>Measured over predicted seconds, summed over the steps that followed another step at once.</summary>
    public double BackToBackRatio { get; init; } = double.NaN;

    public int NumAfterIdle { get; init; }

    /// <summary>Gaps longer than this are taken as idle time (waiting for arrivals), not overhead.</summary>
    public const double IdleGapSeconds = 0.050;

    public static string KindOf(in BatchShape s) => (s.NumDecodes, s.NumPrefills) switch
    {
        (1, 0) => "decode x1",
        ( > 1 and <= 4, 0) => "decode x2-4",
        ( > 4, 0) => "decode x5+",
        (0, 1) => "prompt x1",
        (0, _) => "prompts x2+",
        _ => "mixed",
    };

    /// <param name="predict">A step's predicted seconds from its shape and the idle seconds before it (infinity for the first).</param>
    public static StepComparison Of(IReadOnlyList<StepRecord> steps, Func<BatchShape, double, double> predict)
    {
        if (steps.Count == 0) return new(0, 0, 0, 0, 0, 0, []);
        double measured = 0, predicted = 0, relative = 0;
        var predictions = new double[steps.Count];
        for (int i = 0; i < steps.Count; i++)
        {
            predictions[i] = predict(steps[i].Shape, i == 0 ? double.PositiveInfinity : steps[i].StartTime - steps[i - 1].EndTime);
            measured += steps[i].Seconds;
            predicted += predictions[i];
            relative += Math.Abs(predictions[i] - steps[i].Seconds) / Math.Max(steps[i].Seconds, 1e-9);
        }
        var gaps = new List<double>();
        for (int i = 1; i < steps.Count; i++)
        {
            double gap = steps[i].StartTime - steps[i - 1].EndTime;
            if (gap < IdleGapSeconds) gaps.Add(gap);
        }
        var sortedGaps = gaps.ToArray();
        Array.Sort(sortedGaps);
        var classes = steps.Select((s, i) => (Kind: KindOf(s.Shape), s.Seconds, Predicted: predictions[i]))
            .GroupBy(x => x.Kind)
            .Select(g => new StepClassFigures(g.Key, g.Count(), g.Average(x => x.Seconds), g.Average(x => x.Predicted)))
            .OrderBy(c => c.Kind, StringComparer.Ordinal)
            .ToList();
        double idleMeasured = 0, idlePredicted = 0, busyMeasured = 0, busyPredicted = 0;
        int numAfterIdle = 0;
        for (int i = 0; i < steps.Count; i++)
        {
            bool afterIdle = i == 0 || steps[i].StartTime - steps[i - 1].EndTime >= IdleGapSeconds;
            if (afterIdle)
            {
                numAfterIdle++;
                idleMeasured += steps[i].Seconds;
                idlePredicted += predictions[i];
            }
            else
            {
                busyMeasured += steps[i].Seconds;
                busyPredicted += predictions[i];
            }
        }
        return new(steps.Count, measured, predicted, relative / steps.Count,
            sortedGaps.Length == 0 ? 0 : LatencyStats.Percentile(sortedGaps, 50),
            sortedGaps.Length == 0 ? 0 : sortedGaps.Average(), classes)
        {
            AfterIdleRatio = idlePredicted > 0 ? idleMeasured / idlePredicted : double.NaN,
            BackToBackRatio = busyPredicted > 0 ? busyMeasured / busyPredicted : double.NaN,
            NumAfterIdle = numAfterIdle,
        };
    }
}
