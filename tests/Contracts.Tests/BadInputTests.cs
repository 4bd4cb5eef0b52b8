using OServe.Contracts.Yaml;
using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>Each validation message: the file, the line, the field, and what was expected.</summary>
public sealed class BadInputTests
{
    private const string Cluster = """
        name: c
        gpu_types:
          - {name: H100-80GB, memory_gib: 80, tflops: 989, hbm_gbps: 3350}
        nodes:
          - {name: node0, gpu_type: H100-80GB, gpus: 8, intra_link_gbps: 400}
          - {name: node1, gpu_type: H100-80GB, gpus: 4, intra_link_gbps: 400}
        inter_node_link_gbps: 200
        """;

    private static ContractError Single(Action read)
    {
        var e = Assert.Throws<ContractException>(read);
        return Assert.Single(e.Errors);
    }

    private static Cluster TheCluster => ContractYaml.ParseCluster(Cluster).Value;

    private static ModelCard Llama70B => new()
    {
        Name = "Llama-2-70B", Layers = 80, Hidden = 8192, Intermediate = 28672, Heads = 64, KvHeads = 8, Vocab = 32000, MaxContext = 4096,
    };

    [Fact]
    public void ZeroGpusIsNotAPositiveCount()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster.Replace("gpus: 4", "gpus: 0"), "cluster.yaml"));
        Assert.Equal("cluster.yaml:6 nodes[1].gpus: 0 is not a positive count", error.ToString());
    }

    [Fact]
    public void UnknownFieldIsNamedWithTheExpectedOnes()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster + "\ninter_node_bw: 5\n"));
        Assert.Equal(8, error.Line);
        Assert.Equal("inter_node_bw", error.Field);
        Assert.Contains("unknown field", error.Message);
        Assert.Contains("inter_node_link_gbps", error.Message);
    }

    [Fact]
    public void MissingRequiredFieldIsReported()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster.Replace("inter_node_link_gbps: 200", "")));
        Assert.Equal("inter_node_link_gbps", error.Field);
        Assert.Equal("is required but missing", error.Message);
    }

    [Fact]
    public void TextWhereANumberBelongsIsReported()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster.Replace("tflops: 989", "tflops: fast")));
        Assert.Equal("gpu_types[0].tflops", error.Field);
        Assert.Equal(3, error.Line);
        Assert.Equal("expected a number, got 'fast'", error.Message);
    }

    [Fact]
    public void NodeWithAnUndefinedGpuTypeIsReported()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster.Replace("gpu_type: H100-80GB, gpus: 4", "gpu_type: B200, gpus: 4")));
        Assert.Equal("nodes[1].gpu_type", error.Field);
        Assert.Equal(6, error.Line);
        Assert.Contains("'B200' is not a GPU type of this cluster", error.Message);
    }

    [Fact]
    public void DuplicateNodeNamesAreReported()
    {
        var error = Single(() => ContractYaml.ParseCluster(Cluster.Replace("name: node1", "name: node0")));
        Assert.Equal("nodes[1].name", error.Field);
        Assert.Contains("defined twice", error.Message);
    }

    [Fact]
    public void BrokenYamlSyntaxNamesTheLine()
    {
        var error = Single(() => ContractYaml.ParseCluster("name: c\nnodes: [a, b\n", "bad.yaml"));
        Assert.Equal("bad.yaml", error.File);
        Assert.True(error.Line >= 2);
        Assert.StartsWith("invalid YAML", error.Message);
    }

    [Fact]
    public void AllProblemsAreReportedAtOnceInLineOrder()
    {
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseCluster(
            Cluster.Replace("gpus: 8", "gpus: -1").Replace("hbm_gbps: 3350", "hbm_gbps: 0")));
        Assert.Equal(["gpu_types[0].hbm_gbps", "nodes[0].gpus"], e.Errors.Select(x => x.Field));
        Assert.Contains("cluster.yaml:3 gpu_types[0].hbm_gbps: 0 is not a positive number", e.Message);
    }

    [Fact]
    public void ModelCardHeadsMustDivideHiddenAndKvHeadsMustDivideHeads()
    {
        const string card = "name: m\nlayers: 2\nhidden: 100\nintermediate: 10\nheads: 3\nkv_heads: 2\nvocab: 10\nmax_context: 16\n";
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseModelCard(card, "m.yaml"));
        Assert.Contains(e.Errors, x => x.ToString() == "m.yaml:5 heads: 3 heads do not divide hidden size 100");
        Assert.Contains(e.Errors, x => x.ToString() == "m.yaml:6 kv_heads: 2 KV heads do not divide 3 attention heads");
    }

    [Fact]
    public void BadEnumValueListsTheAllowedOnes()
    {
        var error = Single(() => ContractYaml.ParseWorkload("name: w\ntrace: {path: x.csv, format: parquet}\n"));
        Assert.Equal("trace.format", error.Field);
        Assert.Equal("'parquet' is not one of: azure, burst_gpt, mooncake", error.Message);
    }

    [Fact]
    public void WorkloadNeedsATraceOrASyntheticSpec()
    {
        var error = Single(() => ContractYaml.ParseWorkload("name: w\nwindow_s: 60\n"));
        Assert.Contains("needs a trace, a synthetic spec, or both", error.Message);
    }

    private static string PlanYaml(string replicas, string routing = "  - {type: t0, weights: {r0: 1}}") => $$"""
        model: Llama-2-70B
        cluster: c
        request_types:
          - {name: t0, input_tokens: 100, output_tokens: 10}
        replicas:
        {{replicas}}
        routing:
        {{routing}}
        """;

    private static IReadOnlyList<ContractError> Check(string yaml)
    {
        var plan = ContractYaml.ParsePlan(yaml, "plan.yaml");
        return PlanChecks.Validate(plan.Value, TheCluster, Llama70B, plan.Lines);
    }

    [Fact]
    public void TpNotDividingTheHeadsIsReported()
    {
        var errors = Check(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1, node0/2], tp: 3}"));
        var error = Assert.Single(errors);
        Assert.Equal("plan.yaml:6 replicas[0].tp: tp 3 does not divide the 64 attention heads of Llama-2-70B", error.ToString());
    }

    [Fact]
    public void AReplicaOnAGpuThatDoesNotExistIsReported()
    {
        var errors = Check(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node1/3, node1/4], tp: 2}"));
        var error = Assert.Single(errors);
        Assert.Equal("replicas[0].devices[1]", error.Field);
        Assert.Equal("GPU node1/4 does not exist: node 'node1' has 4 GPUs (0..3)", error.Message);
        Assert.Equal(6, error.Line);
        var unknownNode = Check(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node9/0, node9/1], tp: 2}"));
        Assert.Equal(2, unknownNode.Count);
        Assert.All(unknownNode, e => Assert.Contains("cluster 'c' has no node 'node9'", e.Message));
    }

    [Fact]
    public void AGpuUsedTwiceIsReported()
    {
        var error = Single(() => ContractYaml.ParsePlan(PlanYaml("""
              - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1], tp: 2}
              - {id: r1, gpu_type: H100-80GB, devices: [node0/1, node0/2], tp: 2}
            """), "plan.yaml"));
        Assert.Equal("plan.yaml:7 replicas[1].devices[0]: GPU node0/1 is used twice (also by replica 'r0')", error.ToString());
    }

    [Fact]
    public void DeviceCountMustBeTpTimesPp()
    {
        var error = Single(() => ContractYaml.ParsePlan(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1, node0/2], tp: 2, pp: 2}")));
        Assert.Equal("3 devices listed but tp 2 x pp 2 needs 4", error.Message);
    }

    [Fact]
    public void MalformedDeviceIdIsReported()
    {
        var error = Single(() => ContractYaml.ParsePlan(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [gpu0, node0/1], tp: 2}")));
        Assert.Equal("replicas[0].devices[0]", error.Field);
        Assert.Contains("not a device id of the form node/index", error.Message);
    }

    [Fact]
    public void ATensorParallelGroupMustStayInOneNode()
    {
        var error = Assert.Single(Check(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node0/7, node1/0], tp: 2}")));
        Assert.Contains("pipeline stage 0 spans nodes node0, node1", error.Message);
    }

    [Fact]
    public void WeightsThatDoNotFitAreReported()
    {
        var error = Assert.Single(Check(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node0/0]}")));
        Assert.Equal("replicas[0].tp", error.Field);
        Assert.Contains("GiB of weights per GPU", error.Message);
    }

    [Fact]
    public void PpBeyondTheLayersIsReported()
    {
        var small = Llama70B with { Layers = 2 };
        var plan = ContractYaml.ParsePlan(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1, node0/2, node0/3], tp: 1, pp: 4}"));
        var errors = PlanChecks.Validate(plan.Value, TheCluster, small with { Name = "Llama-2-70B" }, plan.Lines);
        Assert.Contains(errors, e => e.Message == "pp 4 exceeds the 2 layers of Llama-2-70B");
    }

    [Fact]
    public void RoutingToUnknownTypesOrReplicasIsReported()
    {
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParsePlan(PlanYaml(
            "  - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1], tp: 2}",
            "  - {type: t9, weights: {r7: 1}}"), "plan.yaml"));
        Assert.Contains(e.Errors, x => x.Field == "routing[0].type" && x.Message.StartsWith("'t9' is not one of the plan's request types"));
        Assert.Contains(e.Errors, x => x.Field == "routing[0].weights.r7" && x.Message == "'r7' is not a replica of this plan");
    }

    [Fact]
    public void NegativeOrAllZeroWeightsAreReported()
    {
        const string replica = "  - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1], tp: 2}";
        var negative = Single(() => ContractYaml.ParsePlan(PlanYaml(replica, "  - {type: t0, weights: {r0: -1}}")));
        Assert.Equal("-1 is negative", negative.Message);
        var zero = Single(() => ContractYaml.ParsePlan(PlanYaml(replica, "  - {type: t0, weights: {r0: 0}}")));
        Assert.Contains("weights sum to 0", zero.Message);
    }

    [Fact]
    public void DuplicateReplicaIdsAndWrongGpuTypesAreReported()
    {
        var dup = Single(() => ContractYaml.ParsePlan(PlanYaml("""
              - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1], tp: 2}
              - {id: r0, gpu_type: H100-80GB, devices: [node0/2, node0/3], tp: 2}
            """)));
        Assert.Equal("replica id 'r0' is used twice", dup.Message);
        var errors = Check(PlanYaml("  - {id: r0, gpu_type: A100-80GB, devices: [node0/0, node0/1], tp: 2}"));
        Assert.Contains(errors, e => e.Message == "'A100-80GB' is not a GPU type of cluster 'c'");
    }

    [Fact]
    public void PlanForAnotherModelOrClusterIsReported()
    {
        var plan = ContractYaml.ParsePlan(PlanYaml("  - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1], tp: 2}"));
        var errors = PlanChecks.Validate(plan.Value, TheCluster with { Name = "other" }, Llama70B with { Name = "X" }, plan.Lines);
        Assert.Contains(errors, e => e.Field == "model");
        Assert.Contains(errors, e => e.Field == "cluster");
    }

    [Fact]
    public void UnreadableFileIsAContractErrorNotAnIoException()
    {
        var error = Single(() => ContractYaml.ReadCluster("/nonexistent/cluster.yaml"));
        Assert.Equal("/nonexistent/cluster.yaml", error.File);
        Assert.StartsWith("cannot read the file", error.Message);
    }

    [Fact]
    public void DeviceIdParsesAndRejects()
    {
        Assert.Equal(new DeviceId("node0", 3), DeviceId.Parse("node0/3"));
        Assert.False(DeviceId.TryParse("node0/-1", out _));
        Assert.False(DeviceId.TryParse("/3", out _));
        Assert.False(DeviceId.TryParse("node0/", out _));
    }
}
