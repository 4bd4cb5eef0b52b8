using OServe.Engine.Execution;
using OServe.Engine.Profiling;
using OServe.Engine.Simulation;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

public sealed class StepTimeFitTests
{
    private static readonly StepTimeCoefficients Known = new(
        IterationOverheadSec: 4e-3, PrefillSecPerToken: 1.5e-4, PrefillSecPerSeq: 2e-3,
        PrefillSecPerAttentionPair: 3e-8, DecodeSecPerSeq: 1.2e-3, DecodeSecPerContextToken: 2e-7);

    private static List<StepTiming> Synthetic(StepTimeCoefficients k, Func<int, double>? noise = null) =>
        ProfileGrid.Default.Points()
            .Select((p, i) => BatchShape.Of(p.PrefillTokens > 0 ? 1 : 0, p.PrefillTokens, p.NumDecodes, p.Context) is var s
                ? new StepTiming(s, k.Predict(s) * (1 + (noise?.Invoke(i) ?? 0))) : default)
            .ToList();

    [Fact]
    public void ExactTimings_RecoverEveryCoefficient()
    {
        var fit = StepTimeFit.Fit(Synthetic(Known));
        var got = fit.Coefficients.Entries().ToList();
        var want = Known.Entries().ToList();
        for (int i = 0; i < want.Count; i++)
            Assert.True(Math.Abs(got[i].Value - want[i].Value) <= 1e-6 * want[i].Value, $"{want[i].Key}: fitted {got[i].Value}, true {want[i].Value}");
        Assert.True(fit.RSquared > 0.999999, $"R^2 {fit.RSquared}");
        Assert.True(fit.MaxRelativeError < 1e-6, $"max relative error {fit.MaxRelativeError}");
    }

    [Fact]
    public void NoisyTimings_StayClose_AndAbsentTermIsPinnedAtZeroNotNegative()
    {
        // No per-context decode cost at all, 3% alternating noise: the fit must not go negative.
        var truth = Known with { DecodeSecPerContextToken = 0 };
        var fit = StepTimeFit.Fit(Synthetic(truth, i => i % 2 == 0 ? 0.03 : -0.03));
        foreach (var (key, value) in fit.Coefficients.Entries())
            Assert.True(value >= 0, $"{key} = {value}");
        Assert.InRange(fit.Coefficients.IterationOverheadSec, 3e-3, 5e-3);
        Assert.InRange(fit.Coefficients.PrefillSecPerToken, 1.2e-4, 1.8e-4);
        Assert.InRange(fit.Coefficients.DecodeSecPerSeq, 1.0e-3, 1.4e-3);
        Assert.True(fit.MaxRelativeError < 0.08, $"max relative error {fit.MaxRelativeError}");
    }

    [Fact]
    public void TooFewOrNonPositiveTimings_AreRefusedWithTheReason()
    {
        var few = Synthetic(Known).Take(3).ToList();
        Assert.Contains("at least 6", Assert.Throws<ArgumentException>(() => StepTimeFit.Fit(few)).Message);
        var bad = Synthetic(Known);
        bad[4] = bad[4] with { Seconds = 0 };
        Assert.Contains("positive", Assert.Throws<ArgumentException>(() => StepTimeFit.Fit(bad)).Message);
    }

    [Fact]
    public void TheRegimeGrid_StraddlesEveryRowBoundary_ForDecodeOnlyAndPromptSteps()
    {
        var grid = ProfileGrid.ForRegimes([4, 16]);
        // b decodes alone are b rows; b - 1 decodes with a prompt are b rows too; b + 1 is past the jump.
        Assert.Equal([0, 1, 2, 3, 4, 5, 8, 15, 16, 17, 32], grid.DecodeCounts);
        Assert.Equal(ProfileGrid.Default.Contexts, grid.Contexts);
        Assert.Equal(ProfileGrid.Default.PrefillTokens, grid.PrefillTokens);
        Assert.Equal(ProfileGrid.Default.DecodeCounts, ProfileGrid.ForRegimes([]).DecodeCounts);
    }
}
