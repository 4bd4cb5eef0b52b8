using System.Text.RegularExpressions;
using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Demo;

public sealed class DemoCommandTests
{
    /// <summary>
    /// The whole demo on very short replays with output redirected (no terminal): calibration of
    /// both deployments, the adaptive replay with the controller and each static one over real
    /// HTTP, the summary, and no request lost or duplicated in any replay.
    /// </summary>
    [Fact]
    public async Task Quick_demo_replays_every_deployment_without_losing_a_request()
    {
        var output = new StringWriter();
        var error = new StringWriter();

        var csvDir = Path.Combine(Path.GetTempPath(), "oserve-demo-csv-" + Guid.NewGuid().ToString("N"));

        var code = await OServeCli.RunAsync(["demo", "--quick", "--duration", "3", "--window", "0.5", "--no-paper-scale", "--warm-up-replay", "2", "--windows",
            "--requests-csv", csvDir], output, error);

        var text = output.ToString();
        Assert.True(code == OServeCli.ExitOk, $"exit {code}\n{text}\n{error}");
        Assert.Contains("calibration (", text);
        // Predicted and measured, both shapes; chat throughput in-process and over HTTP.
        Assert.Matches(@"1 x tp2 +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d", text);
        Assert.Matches(@"2 x tp1 +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d +\d+\.\d", text);
        Assert.Contains("initial plan (the planner's, for the first window):", text);
        var warm = Regex.Match(text, @"warm-up replay \(not counted[^)]*\): (\d+)/(\d+) completed, each finished once by the server");
        Assert.True(warm.Success, $"no warm-up replay line:\n{text}");
        Assert.Equal(warm.Groups[2].Value, warm.Groups[1].Value);
        Assert.True(text.IndexOf("warm-up replay", StringComparison.Ordinal) < text.IndexOf("adaptive #1:", StringComparison.Ordinal), "the warm-up comes before the measured replays");
        foreach (var deployment in new[] { "adaptive #1", "static 1 x tp2 #1", "static 2 x tp1 #1" })
        {
            var line = Regex.Match(text, Regex.Escape(deployment) + @": (\d+)/(\d+) completed, each finished once by the server");
            Assert.True(line.Success, $"no result line for {deployment}:\n{text}");
            Assert.Equal(line.Groups[2].Value, line.Groups[1].Value);
            // --requests-csv: a row per request sent, in order of sending, every one a success.
            var rows = File.ReadAllLines(Path.Combine(csvDir, OServe.Engine.Demo.DemoReplay.CsvName(deployment[..deployment.IndexOf(" #", StringComparison.Ordinal)], 1)));
            Assert.Equal(OServe.Engine.Benchmarking.OutcomesCsv.Header, rows[0]);
            Assert.Equal(int.Parse(line.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), rows.Length - 1);
            var sentAt = rows.Skip(1).Select(r => double.Parse(r.Split(',')[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            Assert.All(rows.Skip(1), r => Assert.Equal("1", r.Split(',')[4]));
            Assert.True(sentAt.Zip(sentAt.Skip(1)).All(p => p.First <= p.Second + 1e-3), "rows are in order of sending");
        }
        Directory.Delete(csvDir, recursive: true);
        // --windows: the adaptive replay's controller log, each window's rates and its decision.
        Assert.Matches(@"adaptive #1 \[ *\d+\.\ds\] window \d+: observed chat=\d+\.\d+ long=\d+\.\d+ req/s; forecast ", text);
        Assert.Matches(@"adaptive #1 \[ *\d+\.\ds\] decision: (keep|reroute|switch|skip)", text);
        Assert.DoesNotMatch(@"static [^\n]*\] decision:", text); // static replays have no controller
        Assert.Contains("--- switches of the adaptive replays ---", text);
        Assert.Matches(@"summary: \d+ requests per replay, 1 replay\(s\) of each deployment", text);
        Assert.Contains("verdict: adaptive", text);
        Assert.Contains("no request lost or duplicated", text);
        Assert.DoesNotContain("\u001b[", text); // no terminal escape codes when redirected
        Assert.DoesNotContain("paper scale", text);
    }

    [Theory]
    [InlineData(new[] { "demo", "--duration", "8", "--window", "3" }, "--window")]
    [InlineData(new[] { "demo", "--repeats", "0" }, "--repeats: must be in 1..10, got 0")]
    [InlineData(new[] { "demo", "--rate-scale", "-1" }, "--rate-scale")]
    [InlineData(new[] { "demo", "--warm-up-replay", "-1" }, "--warm-up-replay")]
    public async Task Bad_options_are_refused_with_the_option_named_before_anything_runs(string[] args, string expected)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(args, output, error);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains(expected, error.ToString());
        Assert.DoesNotContain("calibration", output.ToString());
    }
}
