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
        var links = new Links(400e9, 200e9);
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
}
