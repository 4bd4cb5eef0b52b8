using OServe.Engine.Execution;
using OServe.Engine.Profiling;
using OServe.Engine.Simulation;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

/// <summary>Fidelity's split of the error: step-time model against measured steps, and the time between steps.</summary>
public sealed class StepComparisonTests
{
    private static readonly BatchShape OneDecode = BatchShape.Of(0, 0, 1, 100);
    private static readonly BatchShape FourDecodes = BatchShape.Of(0, 0, 4, 100);
    private static readonly BatchShape Prompt = BatchShape.Of(1, 64, 0, 0);

    [Fact]
    public void Totals_errors_gaps_and_idle_split_add_up()
    {
        // Steps of 10 ms; the third starts after an idle second, the others 1 ms after the previous one.
        StepRecord[] steps =
        [
            new(0.000, 0.010, Prompt),
            new(0.011, 0.021, OneDecode),
            new(1.021, 1.031, FourDecodes),
            new(1.032, 1.042, OneDecode),
        ];
        // The model predicts 5 ms for one decode and 10 ms for anything else.
        var c = StepComparison.Of(steps, (s, _) => s.NumDecodes == 1 ? 0.005 : 0.010);

        Assert.Equal(4, c.NumSteps);
        Assert.Equal(0.040, c.MeasuredSeconds, 9);
        Assert.Equal(0.030, c.PredictedSeconds, 9);
        Assert.Equal(0.25, c.MeanAbsRelativeError, 9); // two steps 50% off, two exact
        Assert.Equal(0.001, c.MedianGapSeconds, 9); // the idle second is not a gap
        Assert.Equal(2, c.NumAfterIdle); // the first step, and the one after the idle second
        Assert.Equal(0.020 / 0.020, c.AfterIdleRatio, 9);
        Assert.Equal(0.020 / 0.010, c.BackToBackRatio, 9);
        var decodes = Assert.Single(c.Classes, x => x.Kind == "decode x1");
        Assert.Equal(2, decodes.Count);
        Assert.Equal(0.010, decodes.MeanMeasured, 9);
        Assert.Equal(0.005, decodes.MeanPredicted, 9);
        Assert.Equal(["decode x1", "decode x2-4", "prompt x1"], c.Classes.Select(x => x.Kind));
    }

    [Fact]
    public void No_steps_give_an_empty_comparison()
    {
        var c = StepComparison.Of(Array.Empty<StepRecord>(), (_, _) => 1);
        Assert.Equal(0, c.NumSteps);
        Assert.Empty(c.Classes);
    }

    [Fact]
    public void Runs_on_their_own_clocks_start_after_no_step()
    {
        // Two runs, each engine's clock from 0: the second run's first step is not 'after a negative gap'.
        StepRecord[] first = [new(0.000, 0.010, Prompt), new(0.011, 0.021, OneDecode)];
        StepRecord[] second = [new(0.000, 0.010, Prompt), new(0.012, 0.022, OneDecode)];
        var idles = new List<double>();
        var c = StepComparison.Of([first, second], (_, idle) => { idles.Add(idle); return 0.010; });

        Assert.Equal(4, c.NumSteps);
        Assert.Equal([double.PositiveInfinity, 0.001, double.PositiveInfinity, 0.002], idles, (a, b) => Math.Abs(a - b) < 1e-9 || a == b);
        Assert.Equal(2, c.NumAfterIdle);
        Assert.Equal(0.0015, c.MeanGapSeconds, 9);
        Assert.Equal(0.040, c.MeasuredSeconds, 9);
    }
}
