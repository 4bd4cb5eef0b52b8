using System.Diagnostics;
using System.Globalization;
using OServe.Engine.Cli;

namespace OServe.Engine.Demo;

/// <summary>
/// The demo's last section: the paper-scale picture from the simulator, next to the live CPU
/// run. It runs `oserve compare` (OServe, best static, reload switching, the paper's heuristic on
/// one simulated trace: ratio table, JSON, PNG plots) on <see cref="Scenario"/> for a short stretch.
/// </summary>
/// <remarks>
/// HOOK (issue 13, item 4): for now this is the built-in skew scenario on the current cost model
/// with the analytic service model and no plan verification, so it finishes in seconds. The
/// calibrated GPU cost model and a `scenarios/paper/` scenario replace <see cref="Scenario"/> and
/// <see cref="CompareArguments"/> here; the demo only calls <see cref="RunAsync"/>.
/// </remarks>
public static class PaperScaleSection
{
    /// <summary>A built-in scenario name (resolved beside the executable, so the demo works from any directory).</summary>
    public const string Scenario = "llama2-70b-skew-conv50";

    /// <summary>The compare command line the section runs.</summary>
    public static string[] CompareArguments(double durationS, string outputDir) =>
    [
        "compare", Scenario, "--duration", durationS.ToString(CultureInfo.InvariantCulture),
        "--service", "analytic", "--verify", "off", "--output", outputDir,
    ];

    /// <returns>the compare command's exit code (0 when it ran).</returns>
    public static async Task<int> RunAsync(double durationS, TextWriter output, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"oserve-demo-paper-{Environment.ProcessId}");
        var args = CompareArguments(durationS, dir);
        output.WriteLine($"--- paper scale: simulated, `oserve {string.Join(' ', args)}` ---");
        var watch = Stopwatch.StartNew();
        var error = new StringWriter();
        int code = await OServeCli.RunAsync(args, output, error);
        if (error.ToString().Trim() is { Length: > 0 } e) output.WriteLine(e);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"paper scale: {(code == 0 ? "done" : $"compare exited {code}")} in {watch.Elapsed.TotalSeconds:F1} s; plots in {dir}"));
        cancellationToken.ThrowIfCancellationRequested();
        return code;
    }
}
