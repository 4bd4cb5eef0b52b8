using OServe.Contracts.Yaml;
using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>What a plan says about its solve (stages, status) and its routing must hold together.</summary>
public sealed class PlanSolveTests
{
    private static string Plan(string routing, string predicted = "") => $$"""
        model: m
        cluster: c
        request_types:
          - {name: chat, input_tokens: 100, output_tokens: 10}
          - {name: code, input_tokens: 900, output_tokens: 20}
        replicas:
          - {id: r0, gpu_type: H100-80GB, devices: [node0/0]}
        routing:
        {{routing}}
        {{predicted}}
        """;

    private const string BothRouted = "  - {type: chat, weights: {r0: 1}}\n  - {type: code, weights: {r0: 1}}";

    [Fact]
    public void ADeclaredTypeWithoutARoutingEntryIsRefusedWithItsLine()
    {
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParsePlan(Plan("  - {type: chat, weights: {r0: 1}}"), "plan.yaml"));
        var error = Assert.Single(e.Errors);
        Assert.Equal("plan.yaml:5 request_types[1]: type 'code' has no routing entry with a replica: its requests would be served nowhere", error.ToString());
    }

    [Fact]
    public void StagesRoundTripWithTheirStatus()
    {
        var yaml = Plan(BothRouted, """
            predicted:
              solve_status: Feasible
              stages:
                - {name: served, status: optimal, objective: 12.5, bound: 12.5, deterministic_time: 0.01, budget: 0.4, wall_seconds: 0.02}
                - {name: latency, status: feasible, objective: 300, bound: 280, deterministic_time: 0.3, budget: 0.3, stopped_by: work budget}
            """);
        var plan = ContractYaml.ParsePlan(yaml).Value;
        var again = ContractYaml.ParsePlan(ContractYaml.Write(plan)).Value;
        var stages = Assert.IsAssignableFrom<IReadOnlyList<SolveStage>>(again.Predicted?.Stages);
        Assert.Equal([SolveStageStatus.Optimal, SolveStageStatus.Feasible], stages.Select(s => s.Status));
        Assert.Equal("work budget", stages[1].StoppedBy);
        Assert.False(stages[1].IsFinished);
        Assert.Contains("status: no_solution", ContractYaml.Write(new SolveStage { Name = "x", Status = SolveStageStatus.NoSolution }));
    }

    [Fact]
    public void AnOptimalSolveWithAnUnfinishedStageIsRefused()
    {
        var yaml = Plan(BothRouted, """
            predicted:
              solve_status: Optimal
              stages:
                - {name: served, status: optimal}
                - {name: latency, status: feasible, stopped_by: work budget}
            """);
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParsePlan(yaml, "plan.yaml"));
        var error = Assert.Single(e.Errors);
        Assert.Equal("predicted.solve_status", error.Field);
        Assert.Equal("says Optimal, but stage 'latency' is feasible", error.Message);
    }

    [Fact]
    public void AnUnfinishedStageMustSayWhatStoppedIt()
    {
        var yaml = Plan(BothRouted, """
            predicted:
              stages:
                - {name: served, status: no_solution}
            """);
        var error = Assert.Single(Assert.Throws<ContractException>(() => ContractYaml.ParsePlan(yaml, "plan.yaml")).Errors);
        Assert.Equal("predicted.stages[0].stopped_by", error.Field);
    }

    [Fact]
    public void AnUnknownStageStatusNamesTheKnownOnes()
    {
        var yaml = Plan(BothRouted, """
            predicted:
              stages:
                - {name: served, status: done}
            """);
        var error = Assert.Single(Assert.Throws<ContractException>(() => ContractYaml.ParsePlan(yaml, "plan.yaml")).Errors);
        Assert.Contains("'done' is not one of: optimal, feasible, no_solution, infeasible, model_invalid, heuristic", error.Message);
    }
}
