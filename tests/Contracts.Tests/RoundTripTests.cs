using OServe.Contracts.Yaml;
using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>Writing then reading gives back the same values (and writing again the same text).</summary>
public sealed class RoundTripTests
{
    internal static Plan SamplePlan() => new()
    {
        Version = 7,
        Model = "Llama-2-70B",
        Cluster = "paper-4x8-h100",
        Planner = "cpsat",
        Window = new PlanWindow { StartS = 120.5, LengthS = 60 },
        RequestTypes =
        [
            new RequestTypeSpec { Name = "t0", InputTokens = 1020.25, OutputTokens = 129, RateRps = 3.141592653589793 },
            new RequestTypeSpec { Name = "t1", InputTokens = 4096, OutputTokens = 13, RateRps = 0.1 },
        ],
        Replicas =
        [
            new ReplicaSpec { Id = "r0", GpuType = "H100-80GB", Devices = ["node0/0", "node0/1", "node0/2", "node0/3"], Tp = 4 },
            new ReplicaSpec { Id = "r1", GpuType = "H100-80GB", Devices = ["node1/0", "node1/1", "node2/0", "node2/1"], Tp = 2, Pp = 2, MaxNumSeqs = 64, MaxNumBatchedTokens = 2048 },
        ],
        Routing =
        [
            new RoutingEntry { Type = "t0", Weights = new Dictionary<string, double> { ["r0"] = 0.25, ["r1"] = 0.75 } },
            new RoutingEntry { Type = "t1", Weights = new Dictionary<string, double> { ["r0"] = 1 } },
        ],
        Predicted = new PredictedFigures { DemandRps = 3.24, ServedRps = 3.24, MaxUtilization = 0.8123456789, SolveStatus = "OPTIMAL", Objective = 12, Bound = 12, Gap = 0, SolveSeconds = 0.031 },
        Switch = new SwitchPlan
        {
            FromVersion = 6,
            TotalBytes = 34_359_738_368,
            EstSeconds = 1.7,
            Steps =
            [
                new SwitchStep { Kind = SwitchStepKind.Keep, Replica = "r0" },
                new SwitchStep { Kind = SwitchStepKind.CopyShard, Replica = "r1", Device = "node1/0", Source = "node1/4", Bytes = 17_179_869_184, EstSeconds = 0.85 },
                new SwitchStep { Kind = SwitchStepKind.LoadShard, Replica = "r1", Device = "node2/0", Source = "storage", Bytes = 17_179_869_184, EstSeconds = 8.5 },
                new SwitchStep { Kind = SwitchStepKind.MoveKv, Replica = "r1" },
            ],
        },
    };

    [Fact]
    public void PlanRoundTripsLosslessly()
    {
        var plan = SamplePlan();
        var text = ContractYaml.Write(plan);
        var back = ContractYaml.ParsePlan(text).Value;
        Assert.Equal(text, ContractYaml.Write(back));
        Assert.Equal(plan.RequestTypes[0].RateRps, back.RequestTypes[0].RateRps); // exact double
        Assert.Equal(plan.Predicted!.MaxUtilization, back.Predicted!.MaxUtilization);
        Assert.Equal(plan.Replicas[1] with { Devices = back.Replicas[1].Devices }, back.Replicas[1]);
        Assert.Equal(plan.Replicas[1].Devices, back.Replicas[1].Devices);
        Assert.Equal(plan.Routing[0].Weights, back.Routing[0].Weights);
        Assert.Equal(plan.Switch!.Steps, back.Switch!.Steps);
        Assert.Equal(plan.Switch.TotalBytes, back.Switch.TotalBytes);
        Assert.Equal(plan.Window, back.Window);
        Assert.Contains("kind: copy_shard", text);
    }

    [Fact]
    public void PlanScheduleRoundTrips()
    {
        var schedule = new PlanSchedule
        {
            Model = "Llama-2-70B", Cluster = "paper-4x8-h100", WindowS = 60,
            Plans = [SamplePlan(), SamplePlan() with { Version = 8, Switch = null }],
        };
        var text = ContractYaml.Write(schedule);
        var back = ContractYaml.ParsePlanSchedule(text).Value;
        Assert.Equal(2, back.Plans.Count);
        Assert.Null(back.Plans[1].Switch);
        Assert.Equal(text, ContractYaml.Write(back));
    }

    [Fact]
    public void ClusterModelCardAndScenarioRoundTrip()
    {
        foreach (var file in RepoFiles.Under("cards"))
        {
            var card = ContractYaml.ReadModelCard(file);
            Assert.Equal(card, ContractYaml.ParseModelCard(ContractYaml.Write(card)).Value);
        }
        foreach (var file in RepoFiles.Under(Path.Combine("scenarios", "clusters")))
        {
            var cluster = ContractYaml.ReadCluster(file);
            var back = ContractYaml.ParseCluster(ContractYaml.Write(cluster)).Value;
            Assert.Equal(cluster.Nodes, back.Nodes);
            Assert.Equal(cluster.GpuTypes, back.GpuTypes);
            Assert.Equal(cluster with { Nodes = back.Nodes, GpuTypes = back.GpuTypes }, back);
        }
        var scenario = ContractYaml.ReadScenario(RepoFiles.Path("scenarios", "opt-66b-azure-shifting-mix.yaml"));
        var text = ContractYaml.Write(scenario);
        var again = ContractYaml.ParseScenario(text).Value;
        Assert.Equal(text, ContractYaml.Write(again));
        Assert.Equal(scenario.Workload.Synthetic!.Components, again.Workload.Synthetic!.Components);
    }
}
