using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>`oserve simulate` and `oserve compare` end to end on a two-minute synthetic scenario.</summary>
public sealed class SimulationCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-sim-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Scenario()
    {
        var path = Path.Combine(_dir, "tiny.yaml");
        File.WriteAllText(path, """
            name: tiny
            cluster: a100-1x8
            model: Llama-2-13B
            workload:
              name: tiny-mix
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
            """);
        return path;
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await OServeCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Compare_PrintsEverySystem_AndWritesJsonPlansAndPlots()
    {
        var outDir = Path.Combine(_dir, "out");
        var (code, output, error) = await Run("compare", Scenario(), "--output", outDir, "--per-window");
        Assert.Equal("", error);
        Assert.Equal(0, code);
        foreach (var system in new[] { "oserve", "static-tp", "static-vllm-default", "reload", "paper-heuristic", "best static in hindsight", "worst static" })
            Assert.Contains(system, output);
        foreach (var file in new[] { "results.json", "plans-oserve.yaml", "rate-per-type.png", "plan-switches.png", "p99-e2e-over-time.png", "e2e-cdf.png" })
            Assert.True(new FileInfo(Path.Combine(outDir, file)).Length > 0, $"{file} missing or empty");
        string json = await File.ReadAllTextAsync(Path.Combine(outDir, "results.json"));
        Assert.Contains("\"request_throughput\"", json);
        // The interface checks read: every system by name, each static shape as static-tpX-ppY, and the vLLM default.
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var names = doc.RootElement.GetProperty("systems").EnumerateArray().Select(e => e.GetProperty("name").GetString()!).ToList();
        Assert.Contains("oserve", names);
        Assert.Contains("static-vllm-default", names);
        Assert.Contains("static-tp8-pp1", names);
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(doc.RootElement.GetProperty("systems").EnumerateArray(),
            e => Assert.True(e.GetProperty("report").GetProperty("overall").GetProperty("e2e").GetProperty("p99").GetDouble() > 0));
        // Llama-2-13B (26 GB) leaves 30% of an 80 GB A100 free at TP1: that is the vLLM default.
        Assert.Contains("tp1: the smallest TP leaving 30% of GPU memory for KV", output);
        Assert.Contains("per window: deployment, P99 TTFT (queue) / P99 E2E in seconds", output);
    }

    [Fact]
    public async Task Simulate_AWrittenSchedule_ReproducesTheComparedRun()
    {
        var outDir = Path.Combine(_dir, "out");
        var first = await Run("simulate", Scenario(), "--planner", "cpsat", "--output", outDir);
        Assert.Equal(0, first.Code);
        var again = await Run("simulate", Scenario(), "--plan", Path.Combine(outDir, "plans-oserve.yaml"));
        Assert.Equal(0, again.Code);
        string P99(string text) => text.Split('\n').First(l => l.StartsWith("P99 E2EL", StringComparison.Ordinal));
        Assert.Equal(P99(first.Out), P99(again.Out));
    }

    [Fact]
    public async Task BadArguments_AreUserErrors_WithExitCode2()
    {
        var (code, _, error) = await Run("simulate", Scenario(), "--planner", "magic");
        Assert.Equal(2, code);
        Assert.Contains("--planner: 'magic'", error);
        (code, _, error) = await Run("simulate", Scenario(), "--rate-scale", "0");
        Assert.Equal(2, code);
        Assert.Contains("--rate-scale", error);
        (code, _, error) = await Run("simulate", Scenario(), "--plan", Path.Combine(_dir, "none.yaml"));
        Assert.Equal(2, code);
        Assert.Contains("not found", error);
    }
}
