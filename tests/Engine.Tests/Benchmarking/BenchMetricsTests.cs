using OServe.Engine.Benchmarking;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

public sealed class BenchMetricsTests
{
    private static RequestOutcome Ok(double ttft, double latency, int outputTokens) => new()
    {
        Success = true, PromptLen = 10, Ttft = ttft, Latency = latency, OutputTokens = outputTokens,
    };

    [Theory]
    // numpy.percentile([1, 2, 3, 4], p) with its default linear interpolation.
    [InlineData(50, 2.5)]
    [InlineData(90, 3.7)]
    [InlineData(99, 3.97)]
    [InlineData(100, 4.0)]
    public void PercentilesInterpolateLikeNumpy(double p, double expected) =>
        Assert.Equal(expected, BenchMetrics.Percentile([1, 2, 3, 4], p), 12);

    [Fact]
    public void StdIsThePopulationStandardDeviation()
    {
        Assert.Equal(5.0, BenchMetrics.Mean([2, 4, 4, 4, 5, 5, 7, 9]), 12);
        Assert.Equal(2.0, BenchMetrics.Std([2, 4, 4, 4, 5, 5, 7, 9]), 12);
        Assert.Equal(0.0, BenchMetrics.Std([]));
        Assert.Equal(0.0, BenchMetrics.Percentile([], 99));
    }

    [Fact]
    public void SummariesAreInMillisecondsOverSuccessfulRequests()
    {
        RequestOutcome[] outcomes =
        [
            Ok(0.100, 1.100, 11) with { Itl = [0.1, 0.1] },
            Ok(0.300, 0.300, 1),
            new RequestOutcome { Success = false, PromptLen = 10, Error = "HTTP 500" },
        ];
        var s = BenchMetrics.SummarizeAll(outcomes, [50]);
        Assert.Equal(200, s[BenchMetric.Ttft].MeanMs, 9);
        Assert.Equal(200, s[BenchMetric.Ttft].MedianMs, 9);
        Assert.Equal(100, s[BenchMetric.Ttft].StdMs, 9);
        // TPOT = (e2e − ttft) / (output − 1) = 1.0 s / 10, and only for outputs longer than one token.
        Assert.Equal(100, s[BenchMetric.Tpot].MeanMs, 9);
        Assert.Equal(100, s[BenchMetric.Itl].PercentileMs(50), 9);
        Assert.Equal(700, s[BenchMetric.E2el].MeanMs, 9);
    }

    [Fact]
    public void GoodputNeedsEverySloMetAndCountsOneTokenTpotAsZero()
    {
        RequestOutcome[] outcomes =
        [
            Ok(0.100, 1.100, 11),   // ttft 100 ms, tpot 100 ms, e2el 1100 ms
            Ok(0.300, 0.300, 1),    // ttft 300 ms, tpot 0, e2el 300 ms
            Ok(0.050, 2.050, 11),   // tpot 200 ms
            new RequestOutcome { Success = false, PromptLen = 10 },
        ];
        Assert.Equal(3, BenchMetrics.CountGood(outcomes, []));
        Assert.Equal(2, BenchMetrics.CountGood(outcomes, [new(BenchMetric.Ttft, 100)]));
        Assert.Equal(2, BenchMetrics.CountGood(outcomes, [new(BenchMetric.Tpot, 100)]));
        Assert.Equal(1, BenchMetrics.CountGood(outcomes, [new(BenchMetric.Ttft, 100), new(BenchMetric.Tpot, 100)]));
        Assert.Equal(1, BenchMetrics.CountGood(outcomes, [new(BenchMetric.E2el, 1000)]));
    }
}
