using OServe.Engine.Profiling;
using OServe.Models;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

/// <summary>A tiny profile of a tiny model: real steps, shapes as asked, a usable fit (no timing asserted).</summary>
public sealed class StepProfilerTests
{
    [Fact]
    public void TinyProfile_MeasuresEveryShape_AndFitsNonNegativeCoefficients()
    {
        using var model = BuiltInModel.Create(new BuiltInModelOptions { Dim = 32, HiddenDim = 64, NumLayers = 1, NumHeads = 2, NumKvHeads = 1, MaxSeqLen = 128, Name = "tiny" });
        var grid = new ProfileGrid([8, 40], [0, 1, 3], [0, 4, 24], Repeats: 2);
        var run = new StepProfiler(model).Run(grid);
        var samples = run.Samples;

        Assert.Equal(grid.Points().Count(), samples.Count);
        foreach (var s in samples)
        {
            Assert.Equal(s.Point.NumDecodes, s.Shape.NumDecodes);
            Assert.Equal(s.Point.PrefillTokens, s.Shape.PrefillTokens);
            // Decodes gain a token per timed step: their context is the grid's, plus the steps of their group so far.
            int maxGrowth = grid.PrefillTokens.Count * (grid.Repeats + 1);
            Assert.InRange(s.Shape.DecodeContextTokens, s.Point.NumDecodes * (double)s.Point.Context, s.Point.NumDecodes * (double)(s.Point.Context + maxGrowth));
            Assert.True(s.MedianSeconds > 0 && s.MinSeconds <= s.MedianSeconds, $"{s.Point}: median {s.MedianSeconds}, min {s.MinSeconds}");
        }
        var fit = StepTimeFit.Fit(samples.Select(s => s.Timing).ToList());
        foreach (var (key, value) in fit.Coefficients.Entries())
            Assert.True(value >= 0 && double.IsFinite(value), $"{key} = {value}");
        Assert.All(samples, s => Assert.True(fit.Coefficients.Predict(s.Shape) > 0));

        // After-idle probes: the prompts alone and one decode at the smallest context, each against its back-to-back time.
        Assert.Equal(["0/0/4", "0/0/24", "1/8/0", "1/8/4", "1/8/24"],
            run.AfterIdle.Select(x => $"{x.Point.NumDecodes}/{x.Point.Context}/{x.Point.PrefillTokens}"));
        Assert.All(run.AfterIdle, x => Assert.True(x.MedianSeconds > 0 && x.BackToBackSeconds == samples.Single(s => s.Point == x.Point).MedianSeconds));
        Assert.True(run.AfterIdleFactor > 0);
    }

    [Fact]
    public void GridLongerThanTheModel_IsRefusedBeforeMeasuring()
    {
        using var model = BuiltInModel.Create(new BuiltInModelOptions { Dim = 32, HiddenDim = 64, NumLayers = 1, NumHeads = 2, NumKvHeads = 1, MaxSeqLen = 64, Name = "tiny" });
        var e = Assert.Throws<ArgumentException>(() => new StepProfiler(model).Run(new ProfileGrid([60], [1], [0, 8], 2)));
        Assert.Contains("exceeds the model's 64 tokens", e.Message);
    }
}
