using OServe.Engine.Simulation;
using OServe.Planner.CostModel;
using Xunit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>The simulator's step time agrees with the planner's own prefill and decode formulas.</summary>
public sealed class CostModelIterationTimeTests
{
    private static readonly CostCoefficients K = CostCoefficientsModule.defaults;
    private static readonly ModelSpec Model = PlannerAdapter.Model(SimulationTestKit.Llama13B);
    private static readonly Links Links = Links.Default(400e9, 200e9);

    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(4, 1, false)]
    [InlineData(2, 2, true)]
    public void OneFreshPrefill_EqualsPlannerPrefill_AndDecodesEqualPlannerDecodeCycle(int tp, int pp, bool crossNode)
    {
        var config = new ReplicaConfig(Hardware.h100, tp, pp, crossNode);
        var model = new CostModelIterationTime(K, Model, Links, config);
        // A fresh prompt of 1000 tokens: 1000 * 500 (query, key) pairs of the causal triangle.
        Assert.Equal(ReplicaCost.prefillSec(K, Model, Links, config, 1, 1000), model.Seconds(1000, 1, 1000 * 500.0, 0, 0), 12);
        // 32 decodes at context 700 each.
        Assert.Equal(ReplicaCost.decodeCycleSec(K, Model, Links, config, 32, 700), model.Seconds(0, 0, 0, 32, 32 * 700), 12);
    }

    [Fact]
    public void MixedBatch_CostsMoreThanEitherHalf_AndLessThanBoth()
    {
        var model = new CostModelIterationTime(K, Model, Links, new ReplicaConfig(Hardware.h100, 1, 1, false));
        double prefill = model.Seconds(512, 1, 512 * 256.0, 0, 0), decode = model.Seconds(0, 0, 0, 64, 64 * 1000), both = model.Seconds(512, 1, 512 * 256.0, 64, 64 * 1000);
        Assert.True(both > Math.Max(prefill, decode) && both < prefill + decode, $"prefill {prefill}, decode {decode}, mixed {both}");
    }
}
