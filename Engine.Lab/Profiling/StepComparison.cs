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

    /// <summary>Gaps this long or longer are idle time (waiting for arrivals), not overhead: the simulator's after-idle threshold.</summary>
    public const double IdleGapSeconds = MeasuredIterationTime.AfterIdleGapSeconds;

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
    public static StepComparison Of(IReadOnlyList<StepRecord> steps, Func<BatchShape, double, double> predict) => Of([steps], predict);

    /// <summary>The steps of several runs, each on its own engine and clock: a run's first step follows no other.</summary>
    public static StepComparison Of(IReadOnlyList<IReadOnlyList<StepRecord>> runs, Func<BatchShape, double, double> predict)
    {
        var steps = runs.SelectMany(r => r).ToList();
        var firstOfRun = new HashSet<int>();
        for (int r = 0, start = 0; r < runs.Count; start += runs[r].Count, r++) firstOfRun.Add(start);
        if (steps.Count == 0) return new(0, 0, 0, 0, 0, 0, []);
        double measured = 0, predicted = 0, relative = 0;
        double idleMeasured = 0, idlePredicted = 0;
        int numAfterIdle = 0;
        var predictions = new double[steps.Count];
        var gaps = new List<double>();
        for (int i = 0; i < steps.Count; i++)
        {
            double idleBefore = firstOfRun.Contains(i) ? double.PositiveInfinity : steps[i].StartTime - steps[i - 1].EndTime;
            predictions[i] = predict(steps[i].Shape, idleBefore);
            measured += steps[i].Seconds;
            predicted += predictions[i];
            relative += Math.Abs(predictions[i] - steps[i].Seconds) / Math.Max(steps[i].Seconds, 1e-9);
            if (idleBefore >= IdleGapSeconds)
            {
                numAfterIdle++;
                idleMeasured += steps[i].Seconds;
                idlePredicted += predictions[i];
            }
            else
            {
                gaps.Add(idleBefore);
            }
        }
        var classes = steps.Select((s, i) => (Kind: KindOf(s.Shape), s.Seconds, Predicted: predictions[i]))
            .GroupBy(x => x.Kind)
            .Select(g => new StepClassFigures(g.Key, g.Count(), g.Average(x => x.Seconds), g.Average(x => x.Predicted)))
            .OrderBy(c => c.Kind, StringComparer.Ordinal)
            .ToList();
        var gapStats = LatencyStats.Of([.. gaps]);
        double busyMeasured = measured - idleMeasured, busyPredicted = predicted - idlePredicted;
        return new(steps.Count, measured, predicted, relative / steps.Count,
            gaps.Count == 0 ? 0 : gapStats.Median, gaps.Count == 0 ? 0 : gapStats.Mean, classes)
        {
            AfterIdleRatio = idlePredicted > 0 ? idleMeasured / idlePredicted : double.NaN,
            BackToBackRatio = busyPredicted > 0 ? busyMeasured / busyPredicted : double.NaN,
            NumAfterIdle = numAfterIdle,
        };
    }
}
