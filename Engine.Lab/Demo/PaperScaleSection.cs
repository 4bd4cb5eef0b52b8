using System.Diagnostics;
using System.Globalization;

namespace OServe.Engine.Demo;

/// <summary>
/// The demo's last section: the paper-scale picture from the simulator, next to the live CPU
/// run. It runs `oserve compare` (OServe, every static shape with the best, median and worst in
/// hindsight marked, vLLM's default deployment, reload switching, the paper's heuristic on one
/// simulated trace: ratio table, JSON, PNG plots) on <see cref="Scenario"/>, the paper's Llama-2-70B
/// evaluation on 32 H100s with the calibrated GPU cost model, for a short stretch.
/// </summary>
/// <remarks>
/// To fit the demo's two minutes the planner uses its analytic service model and no plan
/// verification (a full run, `oserve compare scenarios/paper/llama2-70b-mix.yaml --duration 900`,
/// simulates every candidate plan per window and takes about three minutes; its figures are in
/// Engine.Lab/Simulation/README-simulation.md). The section says so when it runs.
/// </remarks>
public static class PaperScaleSection
{
    /// <summary>A built-in scenario (resolved beside the executable, so the demo works from any directory); synthetic, so no trace is needed.</summary>
    public const string Scenario = "paper/llama2-70b-mix";

    /// <summary>The compare command line the section runs.</summary>
    public static string[] CompareArguments(double durationS, string outputDir) =>
    [
        "compare", Scenario, "--duration", durationS.ToString(CultureInfo.InvariantCulture),
        "--service", "analytic", "--verify", "off", "--output", outputDir,
    ];

    /// <param name="runCommand">runs an `oserve` command line (the CLI's entry point; the lab does not reference the executable).</param>
    /// <returns>the compare command's exit code (0 when it ran).</returns>
    public static async Task<int> RunAsync(Func<string[], TextWriter, TextWriter, Task<int>> runCommand, double durationS, TextWriter output, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"oserve-demo-paper-{Environment.ProcessId}");
        var args = CompareArguments(durationS, dir);
        output.WriteLine($"--- paper scale: simulated, `oserve {string.Join(' ', args)}` ---");
        output.WriteLine("(quick form: analytic service model, no plan verification; the full run's figures are in Engine.Lab/Simulation/README-simulation.md)");
        var watch = Stopwatch.StartNew();
        var error = new StringWriter();
        int code = await runCommand(args, output, error);
        if (error.ToString().Trim() is { Length: > 0 } e) output.WriteLine(e);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"paper scale: {(code == 0 ? "done" : $"compare exited {code}")} in {watch.Elapsed.TotalSeconds:F1} s; plots in {dir}"));
        cancellationToken.ThrowIfCancellationRequested();
        return code;
    }
}
