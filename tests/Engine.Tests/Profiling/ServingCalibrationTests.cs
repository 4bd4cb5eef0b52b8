using OServe.Engine.Profiling;
using OServe.Engine.Simulation;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

/// <summary>
/// The profile's last phase end to end on a tiny model: a real server on 127.0.0.1, a synthetic
/// workload, the step log against the profile. No timing is asserted, only that the measured terms
/// are usable and round-trip through the profile file into the simulator's step time.
/// </summary>
public sealed class ServingCalibrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-serving-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Calibration_measures_usable_terms_that_round_trip_through_the_profile()
    {
        using var model = ProfilingTestKit.TinyModel();
        var run = new StepProfiler(model).Run(ProfilingTestKit.TinyGrid(repeats: 2));
        var fit = StepTimeFit.Fit(run.Samples.Select(s => s.Timing).ToList());
        var path = Path.Combine(_dir, "profile.yaml");
        ProfileFile.Write(path, "test", fit, run.Samples, run.AfterIdleFactor);
        var profiled = ProfileFile.LoadStepTime(path);
        Assert.Equal(ServingFactors.None, profiled.Serving);
        Assert.Equal(0, profiled.FrontendSeconds);

        var workload = ServingCalibration.DefaultWorkload with { NumRequests = 12, LengthScale = 0.03, TimeScale = 0.05, MaxNumSeqs = 4, KvCacheGib = 0.01 };
        var serving = await ServingCalibration.RunAsync(model, profiled, workload);

        Assert.Equal(12, serving.NumRequests);
        // Every prompt is prefilled in some step; conversation answers of a few tokens need decode-only steps too.
        Assert.True(serving.NumPromptSteps >= 1 && serving.NumDecodeSteps >= 1, $"{serving.NumDecodeSteps} decode-only + {serving.NumPromptSteps} prompt steps");
        Assert.True(double.IsFinite(serving.Factors.DecodeOnly) && serving.Factors.DecodeOnly > 0, $"{serving.Factors}");
        Assert.True(double.IsFinite(serving.Factors.WithPrompt) && serving.Factors.WithPrompt > 0, $"{serving.Factors}");
        Assert.True(double.IsFinite(serving.FrontendSeconds) && serving.FrontendSeconds >= 0, $"frontend {serving.FrontendSeconds}");

        ProfileFile.Write(path, "test", fit, run.Samples, run.AfterIdleFactor, serving);
        var calibrated = ProfileFile.LoadStepTime(path);
        Assert.Equal(serving.Factors, calibrated.Serving);
        Assert.Equal(serving.FrontendSeconds, calibrated.FrontendSeconds);
        var withPrompt = run.Samples[^1].Shape;
        var decodeOnly = run.Samples.First(s => s.Point.PrefillTokens == 0).Shape;
        Assert.Equal(serving.Factors.WithPrompt * profiled.Seconds(withPrompt), calibrated.Seconds(withPrompt), 12);
        Assert.Equal(serving.Factors.DecodeOnly * profiled.Seconds(decodeOnly), calibrated.Seconds(decodeOnly), 12);
    }
}
