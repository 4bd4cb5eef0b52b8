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
    public void The_served_gain_tolerance_defaults_to_half_a_percent_and_reads_and_round_trips() =>
        DefaultsReadsAndRoundTrips("min_switch_served_gain", p => p.MinSwitchServedGain, 0.005, "0.03", 0.03);

    [Fact]
    public void The_latency_gain_threshold_defaults_to_five_percent_and_reads_and_round_trips()
    {
        DefaultsReadsAndRoundTrips("min_switch_latency_gain", p => p.MinSwitchLatencyGain, 0.05, "0.2", 0.2);
        RefusedWithFileLineAndField("min_switch_latency_gain", "2");
    }

    [Fact]
    public void The_gain_sigmas_default_to_off_and_read_round_trip_and_refuse_a_negative()
    {
        DefaultsReadsAndRoundTrips("min_switch_gain_sigmas", p => p.MinSwitchGainSigmas, 0, "1.5", 1.5);
        RefusedWithFileLineAndField("min_switch_gain_sigmas", "-1");
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    public void A_tolerance_outside_0_to_1_is_refused_with_file_line_and_field(string value) =>
        RefusedWithFileLineAndField("min_switch_served_gain", value);

    /// <summary>The option's default when absent, its value when given, and the same value after a write and a read.</summary>
    private static void DefaultsReadsAndRoundTrips(string field, Func<PlannerOptions, double> get, double expectedDefault, string text, double value)
    {
        Assert.Equal(expectedDefault, get(ContractYaml.ParseScenario(Scenario("{max_solve_seconds: 0.3}")).Value.Planner));
        var s = ContractYaml.ParseScenario(Scenario($"{{{field}: {text}}}")).Value;
        Assert.Equal(value, get(s.Planner));
        Assert.Equal(value, get(ContractYaml.ParseScenario(ContractYaml.Write(s)).Value.Planner));
    }

    /// <summary>A bad value is refused with the file, the line (the planner section's) and the field's path.</summary>
    private static void RefusedWithFileLineAndField(string field, string text)
    {
        var e = Assert.Throws<ContractException>(() => ContractYaml.ParseScenario(Scenario($"{{{field}: {text}}}"), "s.yaml"));
        Assert.Contains("s.yaml:13", e.Message);
        Assert.Contains($"planner.{field}", e.Message);
    }
}
