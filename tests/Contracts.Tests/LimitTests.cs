using OServe.Contracts.Yaml;
using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>
/// Figures far past anything real are refused where they are written (file:line field: the bound),
/// before any arithmetic or allocation is done on them: GPU counts that would overflow a sum,
/// memory that would size billions of KV blocks, rates that would generate billions of requests.
/// </summary>
public sealed class LimitTests
{
    private static ContractError Single(Action read) => Assert.Single(Assert.Throws<ContractException>(read).Errors);

    private static string Cluster(string gpus, string memory = "80", int numNodes = 1) =>
        "name: c\ngpu_types:\n  - {name: g, memory_gib: " + memory + ", tflops: 989, hbm_gbps: 3350}\nnodes:\n"
        + string.Concat(Enumerable.Range(0, numNodes).Select(i => $"  - {{name: n{i}, gpu_type: g, gpus: {gpus}, intra_link_gbps: 400}}\n"))
        + "inter_node_link_gbps: 200\n";

    [Fact]
    public void Gpu_counts_that_would_overflow_a_sum_are_refused_per_node()
    {
        // Two such nodes once made `validate` die summing them (an overflow trace).
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseCluster(Cluster("2000000000", numNodes: 2), "c.yaml"));
        Assert.Equal(["c.yaml:5 nodes[0].gpus: 2000000000 is above the maximum 1024", "c.yaml:6 nodes[1].gpus: 2000000000 is above the maximum 1024"],
            e.Errors.Select(x => x.ToString()));
    }

    [Fact]
    public void A_cluster_larger_than_the_bound_in_all_is_refused()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster("1024", numNodes: 65), "c.yaml"));
        Assert.Equal("nodes", error.Field);
        Assert.Equal("66560 GPUs in all is above the maximum 65536", error.Message);
        Assert.Equal(5, error.Line);
    }

    [Fact]
    public void Absurd_gpu_memory_is_refused()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster("8", memory: "1e12"), "c.yaml"));
        Assert.Equal("c.yaml:3 gpu_types[0].memory_gib: 1e12 is above the maximum 16384", error.ToString());
    }

    [Fact]
    public void Model_shapes_past_the_bounds_are_refused()
    {
        const string card = "name: m\nlayers: 100000\nhidden: 8192\nintermediate: 28672\nheads: 64\nkv_heads: 8\nvocab: 32000\nmax_context: 99999999\n";
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseModelCard(card, "m.yaml"));
        Assert.Contains(e.Errors, x => x.ToString() == "m.yaml:2 layers: 100000 is above the maximum 1024");
        Assert.Contains(e.Errors, x => x.ToString() == "m.yaml:8 max_context: 99999999 is above the maximum 16777216");
    }

    [Fact]
    public void Synthetic_rates_and_durations_past_the_bounds_are_refused()
    {
        const string workload = "name: w\nsynthetic:\n  duration_s: 1e9\n  components:\n    - {profile: azure_conv, rate_rps: 1e9}\n";
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseWorkload(workload, "w.yaml"));
        Assert.Contains(e.Errors, x => x.ToString() == "w.yaml:3 synthetic.duration_s: 1e9 is above the maximum 10000000");
        Assert.Contains(e.Errors, x => x.ToString() == "w.yaml:5 synthetic.components[0].rate_rps: 1e9 is above the maximum 100000");
    }

    [Fact]
    public void A_trace_time_scale_that_would_compress_it_to_nothing_is_refused()
    {
        var error = Single(() => ContractYaml.ParseWorkload("name: w\ntrace: {path: x.csv, time_scale: 1e-12}\n", "w.yaml"));
        Assert.Equal("trace.time_scale", error.Field);
        Assert.Equal("1e-12 is below the minimum 1E-06", error.Message);
    }

    [Fact]
    public void Replica_parallelism_past_the_bound_is_refused()
    {
        const string plan = "model: m\ncluster: c\nrequest_types: []\nreplicas:\n  - {id: r, gpu_type: g, devices: [n0/0], tp: 100000}\nrouting: []\n";
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParsePlan(plan, "p.yaml"));
        Assert.Contains(e.Errors, x => x.ToString() == "p.yaml:5 replicas[0].tp: 100000 is above the maximum 1024");
    }
}
