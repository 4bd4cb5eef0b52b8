using OServe.Engine.Profiling;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

/// <summary>
/// `oserve fidelity` end to end on a tiny model: repeated real runs over HTTP on 127.0.0.1, the
/// simulator on the same requests. No timing is asserted; the bookkeeping is.
/// </summary>
public sealed class FidelityRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-fidelity-run-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Repeated_runs_are_summarised_by_their_median_and_the_simulator_sees_the_same_requests_each_time()
    {
        using var model = ProfilingTestKit.TinyModel();
        var run = new StepProfiler(model).Run(ProfilingTestKit.TinyGrid(repeats: 1));
        var path = Path.Combine(_dir, "profile.yaml");
        ProfileFile.Write(path, "test", StepTimeFit.Fit(run.Samples.Select(s => s.Timing).ToList()), run.Samples, run.AfterIdleFactor);
        var options = new FidelityOptions { NumRequests = 6, LengthScale = 0.03, TimeScale = 0.05, MaxNumSeqs = 4, KvCacheGib = 0.01, Repeats = 3 };

        var result = await FidelityRun.RunAsync(options, model, ProfileFile.LoadStepTime(path));

        Assert.Equal(3, result.Runs.Count);
        Assert.Equal(0, result.NumFailed);
        Assert.All(result.Runs, r => Assert.Equal(6, r.Real.NumRequests));
        // The simulator's input is the requests (arrivals, tokenised lengths), the same in every run.
        Assert.All(result.Runs, r => Assert.Equal(result.Runs[0].Simulated, r.Simulated));
        Assert.Equal(result.Runs[0].Simulated, result.Simulated);
        var meanE2e = result.Runs.Select(r => r.Real.MeanE2e).Order().ToList();
        Assert.Equal(meanE2e[1], result.Real.MeanE2e);
        Assert.Equal((meanE2e[2] - meanE2e[0]) / meanE2e[1], result.RealSpread(x => x.MeanE2e), 12);
        Assert.All(result.Runs, r => Assert.True(r.SpeedBefore > 0 && r.SpeedAfter > 0, $"speed {r.SpeedBefore} {r.SpeedAfter}"));
        Assert.NotNull(result.SimulatedLinear);
        // Every real step of the three runs is compared with the profile.
        Assert.True(result.Steps.NumSteps >= 3 * 6, $"{result.Steps.NumSteps} steps");
        Assert.True(result.Steps.NumAfterIdle >= 3, $"{result.Steps.NumAfterIdle} steps after idle: each run's first at least");
    }

    [Fact]
    public void Median_of_summaries_is_taken_per_metric()
    {
        LatencySummary[] runs = [new(10, 1, 9, 5, 50, 100), new(10, 3, 7, 4, 60, 90), new(10, 2, 8, 6, 40, 80)];
        Assert.Equal(new LatencySummary(10, 2, 8, 5, 50, 90), LatencySummary.MedianOf(runs));
        Assert.Throws<ArgumentException>(() => LatencySummary.MedianOf([]));
    }
}
