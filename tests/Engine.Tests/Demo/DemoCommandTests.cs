using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Demo;

public sealed class DemoCommandTests
{
    /// <summary>
    /// The whole demo on a very short replay with output redirected (no terminal): it serves over
    /// real HTTP, runs the controller, replays the same workload against the static plan, and
    /// loses no request in either run.
    /// </summary>
    [Fact]
    public async Task Quick_demo_completes_both_runs_without_losing_a_request()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var code = await OServeCli.RunAsync(["demo", "--quick", "--duration", "6", "--window", "2"], output, error);

        var text = output.ToString();
        Assert.True(code == OServeCli.ExitOk, $"exit {code}\n{text}\n{error}");
        Assert.Contains("calibration: matmul", text);
        Assert.Contains("--- adaptive run", text);
        Assert.Contains("--- static run", text);
        Assert.Contains("window 0: observed", text); // the controller closed windows and forecast
        Assert.Contains("decision:", text);
        Assert.Contains("no request lost: completed == sent in both runs", text);
        var sent = System.Text.RegularExpressions.Regex.Matches(text, @"(adaptive|static): (\d+)/(\d+) completed");
        Assert.Equal(2, sent.Count);
        Assert.All(sent, m => Assert.Equal(m.Groups[3].Value, m.Groups[2].Value));
        Assert.DoesNotContain("\u001b[", text); // no terminal escape codes when redirected
        Assert.Contains("initial plan: 2 x tp1", text); // the planner's plan, run by the plan runtime (tp/pp <= 1 for now)
        Assert.Matches(@"summary: \d+ requests replayed twice; \d+ switches, \d+ re-routes applied live", text);
        if (text.Contains("0 switches, 0 re-routes", StringComparison.Ordinal))
            Assert.Contains("why: ", text); // a run without changes says why instead of passing noise off as a gain
    }

    [Fact]
    public async Task A_window_longer_than_the_run_is_refused_with_the_option_named()
    {
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(["demo", "--duration", "5", "--window", "10"], new StringWriter(), error);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("--window", error.ToString());
    }

    [Fact]
    public async Task A_parallelism_limit_below_one_is_refused_before_anything_runs()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(["demo", "--max-parallelism", "0"], output, error);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("--max-parallelism: must be at least 1, got 0", error.ToString());
        Assert.DoesNotContain("calibration", output.ToString());
    }
}
