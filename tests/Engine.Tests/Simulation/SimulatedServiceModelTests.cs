using OServe.Engine.Simulation;
using OServe.Planner.CostModel;
using Xunit;

namespace OServe.Engine.Tests.Simulation;

public sealed class SimulatedServiceModelTests
{
    private static readonly Links Links = Links.Default(450e9, 50e9);
    private static readonly ReplicaConfig Tp8 = new(Hardware.h100, 8, 1, false);

    private static ReplicaMemory Memory(ReplicaConfig c) => ReplicaCost.memory(CostCoefficientsModule.defaults, Hardware.llama2_70b, c).ResultValue;

    [Fact]
    public void MeasuredRate_AgreesWithTheAnalyticSteadyState_AndLatencyGrowsWithLoad()
    {
        var k = CostCoefficientsModule.defaults;
        var model = new SimulatedServiceModel(k, requestsPerLoad: 60);
        var curve = model.Measure(Hardware.llama2_70b, Tp8, Links, Memory(Tp8), 352, 105);
        double analytic = ReplicaCost.estimate(k, Hardware.llama2_70b, Links, Tp8, Memory(Tp8), 352, 105, 0.85).Rate;
        // Same step times, same batch limits: the simulator's saturation rate is within 10% of the closed form.
        Assert.InRange(curve.Rate / analytic, 0.9, 1.1);
        Assert.True(curve.At(0.85).E2eSec > curve.At(0.05).E2eSec, "queueing and bigger batches slow requests at 85% load");
        Assert.True(double.IsPositiveInfinity(curve.At(1.0).E2eSec), "at saturation latency is unbounded");
    }

    [Fact]
    public void ARequestLongerThanTheKvCache_CannotBeServed()
    {
        var model = new SimulatedServiceModel(CostCoefficientsModule.defaults);
        var m = Memory(Tp8);
        var memory = new ReplicaMemory(m.BudgetBytes, m.WeightBytesPerGpu, m.KvBytesPerTokenPerGpu, 1000);
        var estimate = model.Estimate(Hardware.llama2_70b, Tp8, Links, memory, 900, 200, 0.5);
        Assert.Equal(0.0, estimate.Rate);
    }
}
