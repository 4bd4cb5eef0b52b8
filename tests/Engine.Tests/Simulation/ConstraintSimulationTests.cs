using OServe.Contracts;
using OServe.Engine.Cli;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;
using Xunit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>A scenario's constraints hold for every system compare runs and every candidate plan verification ranks.</summary>
public sealed class ConstraintSimulationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-constraints-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string Constraints = """
        constraints:
          - {kind: pin, devices: [node0/0, node0/1], id: tenant}
          - {kind: keep_free, node: node0, gpus: 2}
          - {kind: max_tp, value: 2}
        """;

    private string Scenario(string constraints = Constraints)
    {
        var path = Path.Combine(_dir, "tiny.yaml");
        File.WriteAllText(path, $$"""
            name: tiny
            cluster: a100-1x8
            model: Llama-2-13B
            workload:
              name: tiny
              synthetic:
                seed: 3
                duration_s: 120
                components:
                  - {profile: azure_conv, rate_rps: 3.0, amplitude: 0.5, period_s: 120}
                  - {profile: azure_code, rate_rps: 2.0, amplitude: 0.5, period_s: 120, phase_s: 60}
              window_s: 30
              num_types: 3
            slo: {ttft_s: 2.0, tpot_s: 0.2}
            planner: {max_solve_seconds: 0.3}
            {{constraints}}
            """);
        return path;
    }

    private ScenarioWorkload Load() =>
        ScenarioWorkload.Load(OServe.Contracts.Yaml.ContractYaml.ReadScenario(Scenario()), _dir, (c, rel) => Catalog.Cluster(c, rel), (m, rel) => Catalog.Model(m, rel));

    private static void AssertKept(ScenarioWorkload w, IEnumerable<Plan> plans, string system)
    {
        foreach (var plan in plans)
            Assert.True(PlanConstraints.Violations(plan, w.Scenario.Constraints, w.Cluster).Count == 0,
                $"{system} v{plan.Version}: {string.Join("; ", PlanConstraints.Violations(plan, w.Scenario.Constraints, w.Cluster))}");
    }

    [Fact]
    public void EverySystemAndEveryVerifiedCandidateKeepsTheConstraints()
    {
        var w = Load();
        var k = CostCoefficientsModule.defaults;
        AssertKept(w, SystemRunner.HomogeneousCandidates(w, k), "static candidate");
        Assert.All(SystemRunner.HomogeneousCandidates(w, k), p => Assert.True(p.Replicas.Count > 0));
        AssertKept(w, SystemRunner.BestStatic(w, k).Best.Plans.Plans, "static");
        AssertKept(w, SystemRunner.PlanSchedule(w, ServingSystem.PaperHeuristic).Plans, "paper-heuristic");
        AssertKept(w, SystemRunner.PlanSchedule(w, ServingSystem.OServe).Plans, "oserve (no verification)");
        var verified = VerifiedScheduler.PlanSchedule(w, ServingSystem.OServe, k, service: null);
        AssertKept(w, verified.Plans, "oserve (verified)");
        Assert.All(verified.Plans, p => Assert.Contains(p.Replicas, r => r.Id == "tenant" && r.Devices.SequenceEqual(["node0/0", "node0/1"])));
    }

    [Fact]
    public async Task ABadConstraintInAScenarioStopsCompareWithFileAndLine()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var scenario = Scenario("constraints:\n  - {kind: keep_free, node: node9}");
        int code = await OServeCli.RunAsync(["compare", scenario], output, error);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Matches($@"{System.Text.RegularExpressions.Regex.Escape(scenario)}:\d+ constraints\[0\]\.node: no node 'node9' in cluster 'a100-1x8'", error.ToString());
    }
}
