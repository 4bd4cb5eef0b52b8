using OServe.Engine.Execution;
using OServe.Engine.Simulation;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

/// <summary>The measured-residual table: exact at the profiled points, linear in between, clamped beyond, and a clear error for a grid with holes.</summary>
public sealed class StepTimeTableTests
{
    // A linear model that misses a regime change: steps of more than 4 decodes cost 5 ms more.
    private static double Linear(BatchShape s) => 0.002 + 0.0005 * s.NumDecodes + 1e-6 * s.DecodeContextTokens + 1e-4 * s.PrefillTokens;

    private static double Truth(int decodes, int context, int prefill) =>
        Linear(new MeasuredStep(decodes, context, prefill, 1).Shape) + (decodes > 4 ? 0.005 : 0) + (prefill > 0 && decodes > 0 ? 0.001 : 0);

    private static List<MeasuredStep> Grid(int[] decodes, int[] contexts, int[] prefills)
    {
        var points = prefills.Where(p => p > 0).Select(p => new MeasuredStep(0, 0, p, Truth(0, 0, p))).ToList();
        foreach (int d in decodes)
            foreach (int c in contexts)
                foreach (int p in prefills)
                    points.Add(new MeasuredStep(d, c, p, Truth(d, c, p)));
        return points;
    }

    private static readonly List<MeasuredStep> Points = Grid([1, 4, 8, 16], [64, 512], [0, 16, 256]);

    [Fact]
    public void Every_profiled_point_is_reproduced_exactly()
    {
        var table = new StepTimeTable(Points, Linear);
        Assert.Equal(Points.Count, table.NumPoints);
        foreach (var p in Points)
            Assert.Equal(p.Seconds, Linear(p.Shape) + table.Residual(p.Shape), 12);
    }

    [Fact]
    public void Between_points_the_residual_is_interpolated_and_beyond_the_grid_it_is_the_edge_value()
    {
        var table = new StepTimeTable(Points, Linear);
        // Halfway between 4 decodes (residual 0) and 8 (residual 5 ms) on the decode axis.
        Assert.Equal(0.0025, table.Residual(BatchShape.Of(0, 0, 6, 64)), 12);
        // Context halfway between 64 and 512 changes nothing here: the residual does not depend on it.
        Assert.Equal(0.005, table.Residual(BatchShape.Of(0, 0, 8, 288)), 12);
        // A quarter of the way from prefill 0 (residual 0) to 16 (1 ms), with one decode.
        Assert.Equal(0.00025, table.Residual(BatchShape.Of(1, 4, 1, 64)), 12);
        // Past the largest batch, context and prompt: the edge residual.
        Assert.Equal(0.006, table.Residual(BatchShape.Of(1, 4000, 64, 9000)), 12);
        // Decode-free steps read their own axis (0 residual in the truth).
        Assert.Equal(0, table.Residual(BatchShape.Of(1, 100, 0, 0)), 12);
    }

    [Fact]
    public void A_grid_with_a_hole_is_refused_naming_the_missing_point()
    {
        var holed = Points.Where(p => !(p.NumDecodes == 8 && p.Context == 512 && p.PrefillTokens == 16)).ToList();
        var e = Assert.Throws<ArgumentException>(() => new StepTimeTable(holed, Linear));
        Assert.Contains("missing point decodes 8, context 512, prefill tokens 16", e.Message);
    }

    [Fact]
    public void Points_without_a_decode_only_step_or_a_prompt_alone_are_refused()
    {
        var noDecodeOnly = Points.Where(p => p.PrefillTokens > 0).ToList();
        Assert.Contains("no decode-only point", Assert.Throws<ArgumentException>(() => new StepTimeTable(noDecodeOnly, Linear)).Message);
        var noPromptAlone = Points.Where(p => p.NumDecodes > 0).ToList();
        Assert.Contains("no point with decodes 0", Assert.Throws<ArgumentException>(() => new StepTimeTable(noPromptAlone, Linear)).Message);
    }
}
