using OServe.Engine.Execution;
using OServe.Engine.Profiling;
using OServe.Engine.Simulation;
using OServe.Engine.Tests.Simulation;
using OServe.Planner.CostModel;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

/// <summary>The profile file round-trips through the cost model, and planner and simulator agree on a measured profile.</summary>
public sealed class ProfileFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-profile-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly StepTimeCoefficients Fitted = new(3.3e-3, 1.234567891e-4, 2.5e-3, 3.1e-8, 1.1e-3, 2.2e-7);

    private string Written()
    {
        var path = Path.Combine(_dir, "profile.yaml");
        var sample = new ProfileSample(new ProfilePoint(2, 64, 16), BatchShape.Of(1, 16, 2, 64), 0.01, 0.009, 3);
        var fit = new StepTimeFitResult(Fitted, 0.99, 0.05, 0.02, [0.01]);
        ProfileFile.Write(path, "test \"machine\"", fit, [sample]);
        return path;
    }

    [Fact]
    public void WrittenProfile_LoadsIntoTheCostModel_WithEveryValueExact()
    {
        var k = ProfileFile.Load(Written());
        Assert.Equal(Fitted.IterationOverheadSec, k.IterationOverheadSec);
        Assert.Equal(Fitted.PrefillSecPerToken, k.PrefillSecPerToken);
        Assert.Equal(Fitted.PrefillSecPerSeq, k.PrefillSecPerSeq);
        Assert.Equal(Fitted.PrefillSecPerAttentionPair, k.PrefillSecPerAttentionPair);
        Assert.Equal(Fitted.DecodeSecPerSeq, k.DecodeSecPerSeq);
        Assert.Equal(Fitted.DecodeSecPerContextToken, k.DecodeSecPerContextToken);
        Assert.True(CostCoefficientsModule.isMeasured(k));
        // Everything the profile does not measure keeps its default.
        Assert.Equal(CostCoefficientsModule.defaults.MaxNumSeqs, k.MaxNumSeqs);
        Assert.False(CostCoefficientsModule.isMeasured(CostCoefficientsModule.defaults));
    }

    [Fact]
    public void MeasuredProfile_PlannerAndSimulatorStepTimesAgree()
    {
        var k = ProfileFile.Load(Written());
        var shape = BatchShape.Of(1, 300, 0, 0);
        Assert.Equal(Fitted.Predict(shape), new MeasuredIterationTime(k).Seconds(shape), 12);
        var model = PlannerAdapter.Model(SimulationTestKit.Llama13B);
        var links = Links.Default(400e9, 200e9);
        var config = new ReplicaConfig(Hardware.h100, 1, 1, false);
        var sim = new CostModelIterationTime(k, model, links, config);
        Assert.Equal(ReplicaCost.prefillSec(k, model, links, config, 1, 300), sim.Seconds(shape), 12);
        Assert.Equal(ReplicaCost.decodeCycleSec(k, model, links, config, 8, 500), sim.Seconds(BatchShape.Of(0, 0, 8, 500)), 12);
        Assert.Equal(Fitted.Predict(BatchShape.Of(0, 0, 8, 500)), ReplicaCost.decodeCycleSec(k, model, links, config, 8, 500), 12);
    }

    [Fact]
    public void UnknownKeyInAProfile_IsAnErrorNamingFileAndKey()
    {
        var path = Path.Combine(_dir, "typo.yaml");
        File.WriteAllText(path, "coefficients:\n  decodeSecPerSequence: 0.001\n");
        var e = Assert.Throws<ProfileFileException>(() => ProfileFile.Load(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("decodeSecPerSequence", e.Message);
    }

    [Fact]
    public void WrittenProfile_StepTimeReproducesItsMeasuredPoints_WhereTheLinearFitCannot()
    {
        // A step-time surface with a regime change at 4 decodes (the CPU kernels switch paths).
        static double Truth(BatchShape s) => Fitted.Predict(s) + (s.NumDecodes > 4 ? 0.004 : 0);
        var points = new List<ProfilePoint> { new(0, 0, 16), new(0, 0, 128) };
        foreach (int d in new[] { 1, 4, 8 })
            foreach (int c in new[] { 64, 256 })
                foreach (int p in new[] { 0, 16, 128 })
                    points.Add(new(d, c, p));
        var samples = points.Select(p =>
        {
            var shape = new MeasuredStep(p.NumDecodes, p.Context, p.PrefillTokens, 1).Shape;
            return new ProfileSample(p, shape, Truth(shape), Truth(shape), 3);
        }).ToList();
        var path = Path.Combine(_dir, "grid.yaml");
        ProfileFile.Write(path, "test", new StepTimeFitResult(Fitted, 0.9, 0.3, 0.1, []), samples);

        var model = ProfileFile.LoadStepTime(path);
        Assert.NotNull(model.Table);
        Assert.Equal(points.Count, model.Table.NumPoints);
        // The file keeps 9 significant digits.
        static void Close(double expected, double actual) =>
            Assert.True(Math.Abs(expected - actual) <= 1e-8 * expected, $"expected {expected}, got {actual}");
        foreach (var s in samples)
            Close(s.MedianSeconds, model.Seconds(s.Shape));
        var between = BatchShape.Of(0, 0, 8, 128);
        Close(Truth(between), model.Seconds(between));
        Assert.Equal(Fitted.Predict(between), model.Linear(between), 12);
    }

    [Fact]
    public void ProfileWithoutPoints_UsesTheLinearModelAlone()
    {
        var path = Path.Combine(_dir, "coefficients-only.yaml");
        File.WriteAllText(path, "coefficients:\n  iterationOverheadSec: 0.003\n  decodeSecPerSeq: 0.001\n");
        var model = ProfileFile.LoadStepTime(path);
        Assert.Null(model.Table);
        Assert.Equal(0.003 + 4 * 0.001, model.Seconds(BatchShape.Of(0, 0, 4, 100)), 12);
    }

    [Fact]
    public void ABadPoint_IsAnErrorNamingFileLineAndField()
    {
        var path = Path.Combine(_dir, "bad-point.yaml");
        File.WriteAllText(path, "coefficients:\n  decodeSecPerSeq: 0.001\npoints:\n  - {decodes: 1, context: 64, prefillTokens: 0, medianSec: 0.004}\n  - {decodes: two, context: 64, prefillTokens: 0, medianSec: 0.004}\n  - {decodes: 1, context: 64, prefillTokens: 16}\n");
        var e = Assert.Throws<ProfileFileException>(() => ProfileFile.LoadStepTime(path));
        Assert.Contains($"{path}:5: points.decodes: 'two' is not a whole number >= 0", e.Message);
        Assert.Contains($"{path}:6: points.medianSec: missing", e.Message);
    }

    [Fact]
    public void PointsThatAreNotAFullGrid_AreAnErrorNamingTheFile()
    {
        var path = Path.Combine(_dir, "holed.yaml");
        File.WriteAllText(path, "coefficients:\n  decodeSecPerSeq: 0.001\npoints:\n  - {decodes: 0, context: 0, prefillTokens: 16, medianSec: 0.01}\n  - {decodes: 1, context: 64, prefillTokens: 0, medianSec: 0.004}\n  - {decodes: 2, context: 64, prefillTokens: 0, medianSec: 0.005}\n  - {decodes: 2, context: 64, prefillTokens: 16, medianSec: 0.009}\n");
        var e = Assert.Throws<ProfileFileException>(() => ProfileFile.LoadStepTime(path));
        Assert.Contains($"{path}: points: missing point decodes 1, context 64, prefill tokens 16", e.Message);
    }

    [Fact]
    public void AProfileWithoutMeasuredTerms_IsNoStepTime_AndTheErrorNamesTheFile()
    {
        var path = Path.Combine(_dir, "planner-only.yaml");
        File.WriteAllText(path, "coefficients:\n  prefillMfu: 0.4\n");
        var e = Assert.Throws<ProfileFileException>(() => ProfileFile.LoadStepTime(path));
        Assert.Equal($"{path}: holds no measured step-time terms; write it with `oserve profile`", e.Message);
    }

    [Fact]
    public void ABadAfterIdleFactor_IsAnErrorNamingFileLineAndKey()
    {
        var path = Path.Combine(_dir, "idle.yaml");
        File.WriteAllText(path, "coefficients:\n  decodeSecPerSeq: 0.001\nafterIdleFactor: -2\n");
        var e = Assert.Throws<ProfileFileException>(() => ProfileFile.LoadStepTime(path));
        Assert.Contains($"{path}:3: afterIdleFactor: '-2' is not a positive number", e.Message);
    }

    [Fact]
    public void ANegativeFrontendTime_IsAnErrorNamingFileLineAndKey()
    {
        var path = Path.Combine(_dir, "frontend.yaml");
        File.WriteAllText(path, "coefficients:\n  decodeSecPerSeq: 0.001\nservingPromptStepFactor: 1.1\nfrontendSec: -0.002\n");
        var e = Assert.Throws<ProfileFileException>(() => ProfileFile.LoadStepTime(path));
        Assert.Contains($"{path}:4: frontendSec: '-0.002' is not a number >= 0", e.Message);
    }

    [Fact]
    public void TheProfilesThreadCount_RoundTrips_AndIsNullWhenNotWritten()
    {
        var path = Path.Combine(_dir, "threads.yaml");
        var sample = new ProfileSample(new ProfilePoint(2, 64, 16), BatchShape.Of(1, 16, 2, 64), 0.01, 0.009, 3);
        ProfileFile.Write(path, "test", new StepTimeFitResult(Fitted, 0.99, 0.05, 0.02, [0.01]), [sample], threads: 3);
        Assert.Equal(3, ProfileFile.LoadThreads(path));
        Assert.Equal(Fitted.DecodeSecPerSeq, ProfileFile.Load(path).DecodeSecPerSeq); // the cost model reads past it
        Assert.Null(ProfileFile.LoadThreads(Written()));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("two")]
    [InlineData("1.5")]
    public void ABadThreadCount_IsAnErrorNamingFileLineAndKey(string value)
    {
        var path = Path.Combine(_dir, "threads.yaml");
        File.WriteAllText(path, $"coefficients:\n  decodeSecPerSeq: 0.001\nthreads: {value}\n");
        var e = Assert.Throws<ProfileFileException>(() => ProfileFile.LoadThreads(path));
        Assert.Contains($"{path}:3: threads: '{value}' is not a whole number >= 1", e.Message);
    }
}
