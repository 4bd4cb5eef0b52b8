using OServe.Engine.Simulation;
using Xunit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>The plot rules that can be checked without looking at pixels.</summary>
public sealed class PlotWriterTests
{
    private static WindowMetrics Window(double start) => new(start, 10, [1.0], 0, 1, 1, 1, 1);

    [Fact]
    public void ThePartialLastWindowIsNotDrawn()
    {
        var windows = new[] { Window(0), Window(60), Window(120), Window(180) };
        // The trace ends 10 s into the third window: only two windows are whole.
        Assert.Equal([0.0, 60.0], PlotWriter.FullWindows(windows, 60, 130).Select(w => w.StartS));
        Assert.Equal(3, PlotWriter.FullWindows(windows, 60, 180).Count);
    }

    [Fact]
    public void IdenticalSeriesAreNamed()
    {
        double[] xs = [0, 1, 2];
        var same = PlotWriter.SameAsEarlier([(xs, [1, 2, 3]), (xs, [1, 2, 4]), (xs, [1, 2, 3]), (xs, [1, 2, 3])]);
        Assert.Equal([-1, -1, 0, 0], same);
    }

    [Fact]
    public void AxesStartAtZeroAndAreNeverEmpty()
    {
        Assert.Equal(1, PlotWriter.Top([]));
        Assert.Equal(1, PlotWriter.Top([0, 0, double.NaN]));
        Assert.Equal(10.8, PlotWriter.Top([2, 10, double.PositiveInfinity]), 9);
    }
}
