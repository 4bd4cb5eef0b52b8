using OServe.Contracts;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;
using Xunit;
using static OServe.Engine.Tests.Simulation.SimulationTestKit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>Properties every correct run has: Little's law, conservation across switches, determinism.</summary>
public sealed class SimulatorLawsTests
{
    private static readonly Cluster OneNode = H100Cluster();

    private static Dictionary<string, Dictionary<string, double>> AllTo(IEnumerable<string> ids, params string[] types) =>
        types.ToDictionary(t => t, _ => ids.ToDictionary(id => id, _ => 1.0));

    private static readonly RequestTypeSpec[] TwoTypes = [Type("chat", 400, 150), Type("prompt", 900, 60)];

    /// <summary>Four TP=2 replicas.</summary>
    private static Plan Narrow(double start = 0, int version = 1) => Plan(
        Enumerable.Range(0, 4).Select(i => Replica($"r{i}", 2, Devices("node0", 2 * i, 2).ToArray())).ToList(),
        TwoTypes, AllTo(["r0", "r1", "r2", "r3"], "chat", "prompt"), start, version: version);

    /// <summary>r0 and r1 kept; r2 and r3 replaced by one TP=4 replica on their GPUs.</summary>
    private static Plan Wide(double start, int version) => Plan(
        [Replica("r0", 2, "node0/0", "node0/1"), Replica("r1", 2, "node0/2", "node0/3"), Replica("w0", 4, Devices("node0", 4, 4).ToArray())],
        TwoTypes, new Dictionary<string, Dictionary<string, double>>
        {
            ["chat"] = new() { ["r0"] = 1, ["r1"] = 1 },
            ["prompt"] = new() { ["w0"] = 2 },
        }, start, version: version);

    private static SimulationSetup SwitchingSetup(bool reload, params double[] switchTimes)
    {
        var card = Llama13B;
        var k = CostCoefficientsModule.defaults;
        var plans = new List<Plan> { Narrow() };
        foreach (var (t, i) in switchTimes.Select((t, i) => (t, i)))
        {
            var target = i % 2 == 0 ? Wide(t, i + 2) : Narrow(t, i + 2);
            plans.Add(PlannerAdapter.WithSwitch(OneNode, card, k, plans[^1], target, reload));
        }
        return new SimulationSetup
        {
            Requests = Poisson(seed: 5, rate: 25, durationS: 60, meanInput: 400, meanOutput: 150, numTypes: 2),
            Plans = plans,
            ReplicaModels = CostModel(OneNode, card).For,
            Switching = new SwitchCosts(OneNode, card.KvBytesPerToken),
            TypeNames = ["a", "b"],
        };
    }

    [Fact]
    public void LittlesLaw_TimeAveragedRequestsInSystem_EqualsArrivalRateTimesMeanLatency()
    {
        var card = Llama13B;
        var setup = new SimulationSetup
        {
            Requests = Poisson(seed: 11, rate: 6, durationS: 400, meanInput: 500, meanOutput: 120),
            Plans = [Plan([Replica("r0", 1, "node0/0")], [Type("t", 500, 120)], AllTo(["r0"], "t"))],
            ReplicaModels = CostModel(OneNode, card).For,
        };
        var sim = new OServe.Engine.Simulation.Simulation(setup);
        double sum = 0;
        int samples = 0;
        // The scheduler's own count of queued + running requests, sampled on a fixed grid.
        sim.AddSampler(0.05, s => { sum += s.Replicas.Sum(r => r.Load); samples++; });
        sim.Run();
        var records = sim.Metrics.Records;
        double horizon = samples * 0.05;
        double lambda = records.Count / horizon;
        double w = records.Average(r => r.E2e);
        double l = sum / samples;
        Assert.InRange(l / (lambda * w), 0.97, 1.03);
        Assert.True(l > 1, $"the test should keep the replica busy (L = {l:F2})");
    }

    [Fact]
    public void HotSwitch_RebuildsReplicasMidRun_LosesNothing_AndMovesKvOfLongRequests()
    {
        var sim = Run(SwitchingSetup(reload: false, 20, 40));
        var records = sim.Metrics.Records;
        Assert.Equal(sim.Setup.Requests.Count, sim.Metrics.NumFinished);
        Assert.All(records, r => Assert.True(r.FinishS >= r.FirstTokenS && r.FirstTokenS > r.ArrivalS, $"request {r.Id} has times out of order"));
        Assert.Equal(sim.Setup.Requests.Sum(r => (long)r.OutputTokens), sim.Metrics.NumOutputTokens);
        Assert.Equal(2, sim.SwitchLog.Count);
        var first = sim.SwitchLog[0];
        Assert.Equal((2, 2, 1), (first.NumKept, first.NumRemoved, first.NumNew));
        Assert.True(first.NumKvMoves > 0, "long requests on the replaced replicas should move their KV");
        // The new replica served once built, and the hot switch is quick (a drain plus an NVLink copy).
        var wide = sim.Replicas.Single(r => r.Id == "w0");
        Assert.Contains(records, r => r.ReplicaIndex == wide.Index);
        Assert.InRange(first.EndS - first.StartS, 0, 10);
        Assert.All(sim.Replicas.Where(r => r.Status == ReplicaStatus.Stopped), r => Assert.False(r.Scheduler.HasUnfinishedSequences));
    }

    [Fact]
    public void ReloadSwitch_ServesNothingWhileLoading_AndASecondSwitchCancelsTheBuild_WithoutLoss()
    {
        // Reload reads 13 GB shards at 2 GB/s per node: the second switch (3 s later) finds w0 still building.
        var sim = Run(SwitchingSetup(reload: true, 20, 23));
        Assert.Equal(sim.Setup.Requests.Count, sim.Metrics.NumFinished);
        var wide = sim.Replicas.Single(r => r.Id == "w0");
        Assert.Equal(0, wide.NumSteps);
        Assert.DoesNotContain(sim.Metrics.Records, r => r.ReplicaIndex == wide.Index);
        Assert.True(sim.SwitchLog[1].EndS - sim.SwitchLog[1].StartS > 5, "cold reload of two TP=2 replicas should take seconds");
    }

    [Fact]
    public void SameSetup_GivesIdenticalRecords()
    {
        var a = Run(SwitchingSetup(reload: false, 20, 40));
        var b = Run(SwitchingSetup(reload: false, 20, 40));
        Assert.Equal(a.Metrics.Records, b.Metrics.Records);
        Assert.Equal(a.NumEvents, b.NumEvents);
    }
}
