using OServe.Contracts.Yaml;
using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>A scenario's planner section: the switch rule's served-gain tolerance reads, round-trips and is checked.</summary>
public sealed class PlannerOptionsTests
{
    private static string Scenario(string planner) => $$"""
        name: tiny
        cluster: a100-1x8
        model: Llama-2-13B
        workload:
          name: tiny-mix
          synthetic:
            seed: 3
            duration_s: 120
            components:
              - {profile: azure_conv, rate_rps: 3.0}
          window_s: 30
          num_types: 2
        planner: {{planner}}
        """;

    [Fact]
    public void The_served_gain_tolerance_defaults_to_half_a_percent_and_reads_and_round_trips()
    {
        Assert.Equal(0.005, ContractYaml.ParseScenario(Scenario("{max_solve_seconds: 0.3}")).Value.Planner.MinSwitchServedGain);
        var s = ContractYaml.ParseScenario(Scenario("{min_switch_served_gain: 0.03}")).Value;
        Assert.Equal(0.03, s.Planner.MinSwitchServedGain);
        Assert.Equal(0.03, ContractYaml.ParseScenario(ContractYaml.Write(s)).Value.Planner.MinSwitchServedGain);
    }

    [Fact]
    public void The_latency_gain_threshold_defaults_to_five_percent_and_reads_and_round_trips()
    {
        Assert.Equal(0.05, ContractYaml.ParseScenario(Scenario("{max_solve_seconds: 0.3}")).Value.Planner.MinSwitchLatencyGain);
        var s = ContractYaml.ParseScenario(Scenario("{min_switch_latency_gain: 0.2}")).Value;
        Assert.Equal(0.2, s.Planner.MinSwitchLatencyGain);
        Assert.Equal(0.2, ContractYaml.ParseScenario(ContractYaml.Write(s)).Value.Planner.MinSwitchLatencyGain);
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseScenario(Scenario("{min_switch_latency_gain: 2}"), "s.yaml"));
        Assert.Contains("s.yaml:13", e.Message);
        Assert.Contains("planner.min_switch_latency_gain", e.Message);
    }

    [Fact]
    public void The_gain_sigmas_default_to_off_and_read_round_trip_and_refuse_a_negative()
    {
        Assert.Equal(0, ContractYaml.ParseScenario(Scenario("{max_solve_seconds: 0.3}")).Value.Planner.MinSwitchGainSigmas);
        var s = ContractYaml.ParseScenario(Scenario("{min_switch_gain_sigmas: 1.5}")).Value;
        Assert.Equal(1.5, s.Planner.MinSwitchGainSigmas);
        Assert.Equal(1.5, ContractYaml.ParseScenario(ContractYaml.Write(s)).Value.Planner.MinSwitchGainSigmas);
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseScenario(Scenario("{min_switch_gain_sigmas: -1}"), "s.yaml"));
        Assert.Contains("s.yaml:13", e.Message);
        Assert.Contains("planner.min_switch_gain_sigmas", e.Message);
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    public void A_tolerance_outside_0_to_1_is_refused_with_file_line_and_field(string value)
    {
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseScenario(Scenario($"{{min_switch_served_gain: {value}}}"), "s.yaml"));
        Assert.Contains("s.yaml:13", e.Message);
        Assert.Contains("planner.min_switch_served_gain", e.Message);
    }
}
