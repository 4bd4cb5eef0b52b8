using System.CommandLine;
using OServe.Engine.Demo;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve demo</c>: the main job on built-in defaults. Serves the built-in model on two
/// one-core logical CPU devices, replays a workload that moves between a latency-bound and a
/// throughput-bound regime on the adaptive deployment (live plan switching) and on each static
/// one, and says which won. Exit code 1 when any replay lost or duplicated a request.
/// </summary>
public static class DemoCommand
{
    private static readonly Option<double?> Duration = new("--duration") { Description = "Seconds of each replay; default 14 (5 with --quick)" };
    private static readonly Option<double?> Window = new("--window") { Description = "Controller window, seconds; default 1 (0.5 with --quick)" };
    private static readonly Option<int?> Repeats = new("--repeats") { Description = "Replays of each deployment, interleaved; default 2 (1 with --quick)" };
    private static readonly Option<double?> WarmUpReplay = new("--warm-up-replay") { Description = "Seconds of an uncounted replay over HTTP before the measured ones; default 4 (0 with --quick), 0: none" };
    private static readonly Option<bool> Quick = new("--quick") { Description = "A 5 s replay of each deployment, once (smoke run, under 30 s in all)" };
    private static readonly Option<double> RateScale = new("--rate-scale") { Description = "Multiplies the workload's arrival rates (which calibration sizes to this machine)", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<int> Seed = new("--seed") { Description = "Seed of the workload", DefaultValueFactory = _ => 7 };
    private static readonly Option<string?> Profile = new("--profile") { Description = "Planner cost profile to use instead of the coefficients calibrated at start" };
    private static readonly Option<string?> ProfileOut = new("--profile-out") { Description = "Write the calibrated coefficients here (planner profile format)" };
    private static readonly Option<bool> NoPaperScale = new("--no-paper-scale") { Description = "Skip the closing simulated paper-scale comparison" };
    private static readonly Option<string> InFlight = new("--in-flight") { Description = "A live switch's requests in flight: migrate (move with their KV cache) or drain (finish where they are)", DefaultValueFactory = _ => "migrate" };
    private static readonly Option<string?> RequestsCsv = new("--requests-csv") { Description = "Write each replay's requests (sent when, lengths, TTFT, E2E) to this folder, one CSV per replay" };
    private static readonly Option<bool> Windows = new("--windows") { Description = "After each adaptive replay, print its controller's log: every window's observed and forecast rates and the decision with its reason" };
    private static readonly Option<string> Device = new("--device") { Description = "auto (CUDA when TorchSharp sees it), cpu, cuda or cuda:N; on a GPU the planner's devices share it", DefaultValueFactory = _ => "auto" };

    public static Command Create()
    {
        var command = new Command("demo",
            "Serve the built-in model on two one-core CPU devices, replay a shifting workload with live plan switching and on each static plan, and compare.")
        {
            Duration, Window, Repeats, WarmUpReplay, Quick, RateScale, Seed, Profile, ProfileOut, NoPaperScale, InFlight, Device, Windows, RequestsCsv,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, cancellationToken));
        return command;
    }

    /// <summary>The --in-flight value (demo and worker).</summary>
    internal static OServe.Engine.Orchestration.InFlightPolicy ParseInFlight(string? value) => value switch
    {
        "migrate" => OServe.Engine.Orchestration.InFlightPolicy.Migrate,
        "drain" => OServe.Engine.Orchestration.InFlightPolicy.Drain,
        var other => throw new CliUsageException($"--in-flight: '{other}' is not one of: migrate, drain"),
    };

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var output = parse.InvocationConfiguration.Output;
        var baseline = parse.GetValue(Quick) ? DemoOptions.Quick : new DemoOptions();
        TorchSharp.torch.Device device;
        try { device = OServe.Models.DeviceSelection.Parse(parse.GetValue(Device)!); }
        catch (ArgumentException e) { throw new CliUsageException($"--device: {e.Message}"); }
        var inFlight = ParseInFlight(parse.GetValue(InFlight));
        var options = baseline with
        {
            DurationS = parse.GetValue(Duration) ?? baseline.DurationS,
            WindowS = parse.GetValue(Window) ?? baseline.WindowS,
            Repeats = parse.GetValue(Repeats) ?? baseline.Repeats,
            WarmUpReplayS = parse.GetValue(WarmUpReplay) ?? baseline.WarmUpReplayS,
            RateScale = parse.GetValue(RateScale) * baseline.RateScale,
            Seed = parse.GetValue(Seed),
            ProfilePath = parse.GetValue(Profile),
            ProfileOutPath = parse.GetValue(ProfileOut),
            PaperScale = !parse.GetValue(NoPaperScale),
            RunCommand = (args, output, error) => OServeCli.RunAsync(args, output, error),
            Device = device,
            InFlight = inFlight,
            ShowWindows = parse.GetValue(Windows),
            RequestsCsvDir = parse.GetValue(RequestsCsv),
        };
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException(e.Message);
        }
        var summary = await DemoRunner.RunAsync(options, output, ProgressReporter.IsInteractive(output), cancellationToken);
        return summary.LostNone ? OServeCli.ExitOk : OServeCli.ExitFailure;
    }
}
