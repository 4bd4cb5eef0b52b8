using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Cli;

/// <summary>`simulate` refuses, with the reason, a scenario it could not hold in memory, before building any of it.</summary>
public sealed class SimulationBudgetTests
{
    private static async Task<(int Code, string Err)> Simulate(string dir)
    {
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(["simulate", Path.Combine(dir, "scenario.yaml")], new StringWriter(), error);
        return (code, error.ToString());
    }

    private static string Scenario(int gpusPerNode, int numNodes, double memoryGib, double rateRps, double durationS)
    {
        var dir = Directory.CreateTempSubdirectory("oserve-budget-").FullName;
        File.WriteAllText(Path.Combine(dir, "cluster.yaml"),
            $"name: big\ngpu_types:\n  - {{name: g, memory_gib: {memoryGib}, tflops: 989, hbm_gbps: 3350}}\nnodes:\n"
            + string.Concat(Enumerable.Range(0, numNodes).Select(i => $"  - {{name: n{i}, gpu_type: g, gpus: {gpusPerNode}, intra_link_gbps: 400}}\n"))
            + "inter_node_link_gbps: 200\n");
        File.WriteAllText(Path.Combine(dir, "scenario.yaml"),
            $"name: s\ncluster: cluster.yaml\nmodel: Llama-2-70B\nworkload:\n  name: w\n  synthetic:\n    duration_s: {durationS}\n    components:\n      - {{profile: azure_conv, rate_rps: {rateRps}}}\n");
        return dir;
    }

    [Fact]
    public async Task A_cluster_whose_kv_tables_cannot_fit_is_refused_naming_them()
    {
        // 64 nodes x 1024 GPUs of 16 TiB each: billions of KV blocks, which once took 10-17 GB before dying.
        var (code, error) = await Simulate(Scenario(1024, 64, 16000, 1, 60));
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.StartsWith("error simulate: this scenario would need about", error);
        Assert.Contains("KV block tables for 65536 GPUs of Llama-2-70B", error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public async Task A_workload_with_more_requests_than_memory_is_refused_naming_them()
    {
        var (code, error) = await Simulate(Scenario(8, 1, 80, 90_000, 9_000_000));
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("about 8.1E+11 requests", error);
        Assert.Contains("--duration", error);
    }

    [Fact]
    public void A_scenario_that_fits_passes()
    {
        var dir = Scenario(8, 4, 80, 5, 3600);
        var scenario = OServe.Contracts.Yaml.ContractYaml.ReadScenario(Path.Combine(dir, "scenario.yaml"));
        SimulationBudget.Check(scenario, dir, Catalog.Cluster("cluster.yaml", dir), Catalog.Model("Llama-2-70B"), null, 1.0, null,
            availableBytes: 1L << 30);
    }
}
