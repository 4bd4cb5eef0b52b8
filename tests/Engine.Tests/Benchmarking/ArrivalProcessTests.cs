using OServe.Engine.Benchmarking;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

public sealed class ArrivalProcessTests
{
    private static (double Mean, double Cv) GapStats(double rate, double burstiness)
    {
        var arrivals = ArrivalProcess.Generate(40_001, rate, burstiness, new Random(42));
        var gaps = arrivals.Zip(arrivals.Skip(1), (a, b) => b - a).ToArray();
        var mean = gaps.Average();
        var std = Math.Sqrt(gaps.Sum(g => (g - mean) * (g - mean)) / gaps.Length);
        return (mean, std / mean);
    }

    [Theory]
    [InlineData(1.0, 1.0)]   // Poisson: exponential gaps, coefficient of variation 1
    [InlineData(0.25, 2.0)]  // bursty: CV = 1/√shape
    [InlineData(4.0, 0.5)]   // smooth
    public void MeanGapIsOneOverRateAndBurstinessSetsTheVariation(double burstiness, double expectedCv)
    {
        var (mean, cv) = GapStats(rate: 20, burstiness);
        Assert.InRange(mean, 0.05 * 0.97, 0.05 * 1.03);
        Assert.InRange(cv, expectedCv * 0.95, expectedCv * 1.05);
    }

    [Fact]
    public void InfiniteRateSendsEverythingAtOnceAndTheSeedFixesTheTimes()
    {
        Assert.All(ArrivalProcess.Generate(100, double.PositiveInfinity, 1, new Random(1)), t => Assert.Equal(0, t));
        Assert.Equal(ArrivalProcess.Generate(50, 3, 0.5, new Random(9)), ArrivalProcess.Generate(50, 3, 0.5, new Random(9)));
        var arrivals = ArrivalProcess.Generate(50, 3, 0.5, new Random(9));
        Assert.Equal(0, arrivals[0]);
        Assert.True(arrivals.Zip(arrivals.Skip(1)).All(p => p.Second >= p.First));
    }
}
