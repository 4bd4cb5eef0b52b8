using OServe.Contracts.Yaml;
using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>Constraints files and sections: every problem with file, line and field; checks against a cluster and a plan.</summary>
public sealed class ConstraintTests
{
    private static Cluster TwoNodes => ContractYaml.ParseCluster("""
        name: c
        gpu_types: [{name: H100-80GB, memory_gib: 80, tflops: 989, hbm_gbps: 3350}]
        nodes:
          - {name: node0, gpu_type: H100-80GB, gpus: 8, intra_link_gbps: 400}
          - {name: node1, gpu_type: H100-80GB, gpus: 8, intra_link_gbps: 400}
        inter_node_link_gbps: 200
        """).Value;

    [Fact]
    public void EveryKindReadsAndRoundTrips()
    {
        var set = ContractYaml.ParseConstraints("""
            constraints:
              - {kind: max_replicas, tp: 8, count: 2}
              - {kind: keep_free, node: node1, gpus: 2}
              - {kind: pin, devices: [node0/0, node0/1]}
              - {kind: max_tp, value: 4}
              - {kind: max_pp, value: 2}
              - {kind: no_cross_node_pp}
            """).Value;
        Assert.Equal([ConstraintKind.MaxReplicas, ConstraintKind.KeepFree, ConstraintKind.Pin, ConstraintKind.MaxTp, ConstraintKind.MaxPp, ConstraintKind.NoCrossNodePp],
            set.Constraints.Select(c => c.Kind));
        Assert.Equal(2, set.Constraints[2].Tp); // two devices, pp 1
        Assert.Empty(PlanConstraints.Check(set.Constraints, TwoNodes));
        var again = ContractYaml.ParseConstraints(ContractYaml.Write(set)).Value;
        Assert.Equal(set.Constraints.Select(c => c.Describe()), again.Constraints.Select(c => c.Describe()));
    }

    [Fact]
    public void BadConstraintsAreReportedWithFileLineAndField()
    {
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseConstraints("""
            constraints:
              - {kind: max_replica, tp: 8}
              - {kind: keep_free, node: node0, devices: [node0/0]}
              - {kind: max_tp}
            """, "c.yaml"));
        Assert.Equal([
            "c.yaml:2 constraints[0].kind: 'max_replica' is not one of: max_replicas, keep_free, pin, max_tp, max_pp, no_cross_node_pp",
            "c.yaml:3 constraints[1].devices: unknown field (expected one of: gpus, kind, node)",
            "c.yaml:4 constraints[2].value: is required but missing",
        ], e.Errors.Select(x => x.ToString()));
    }

    [Fact]
    public void NodesAndDevicesAreCheckedAgainstTheCluster()
    {
        var loaded = ContractYaml.ParseConstraints("""
            constraints:
              - {kind: keep_free, node: node7}
              - {kind: pin, devices: [node0/6, node1/0]}
              - {kind: pin, devices: [node0/6, node0/7]}
            """, "c.yaml");
        var errors = PlanConstraints.Check(loaded.Value.Constraints, TwoNodes, loaded.Lines).Select(x => x.ToString()).ToList();
        Assert.Contains("c.yaml:2 constraints[0].node: no node 'node7' in cluster 'c' (nodes: node0, node1)", errors);
        Assert.Contains(errors, x => x.StartsWith("c.yaml:3 constraints[1].devices: a pinned replica must lie in one node", StringComparison.Ordinal));
        Assert.Contains("c.yaml:4 constraints[2].devices[0]: GPU node0/6 is pinned twice (also by constraints[1])", errors);
    }

    [Fact]
    public void APlanIsToldWhichConstraintsItBreaks()
    {
        var plan = ContractYaml.ParsePlan("""
            model: m
            cluster: c
            request_types: [{name: t0, input_tokens: 100, output_tokens: 10}]
            replicas:
              - {id: a, gpu_type: H100-80GB, devices: [node0/0, node0/1, node0/2, node0/3, node0/4, node0/5, node0/6, node0/7], tp: 8}
              - {id: b, gpu_type: H100-80GB, devices: [node1/0, node1/1], tp: 2}
            routing: [{type: t0, weights: {a: 1, b: 1}}]
            """).Value;
        var constraints = ContractYaml.ParseConstraints("""
            constraints:
              - {kind: max_tp, value: 4}
              - {kind: keep_free, node: node1, gpus: 7}
              - {kind: pin, devices: [node1/0, node1/1]}
              - {kind: max_replicas, tp: 2, count: 1}
            """).Value.Constraints;
        Assert.Equal(["max_tp 4: replica a has tp 8", "keep_free node1 (7 GPUs): 2 of its 8 GPUs in use"],
            PlanConstraints.Violations(plan, constraints, TwoNodes));
    }
}
