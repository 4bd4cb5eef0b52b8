using System.CommandLine;
using OServe.Engine.Demo;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve demo</c>: the main job on built-in defaults. Serves the built-in model on logical CPU
/// devices, replays a workload whose mix shifts, lets the controller switch plans live, then replays
/// it against the initial plan held fixed and prints what the switches bought.
/// </summary>
public static class DemoCommand
{
    private static readonly Option<double?> Duration = new("--duration") { Description = "Seconds of each replay (two replays run); default 90" };
    private static readonly Option<double?> Window = new("--window") { Description = "Controller window, seconds; default 15" };
    private static readonly Option<bool> Quick = new("--quick") { Description = "A 10 s replay with 2.5 s windows (smoke run)" };
    private static readonly Option<int> Devices = new("--devices") { Description = "Logical CPU devices to plan on", DefaultValueFactory = _ => 2 };
    private static readonly Option<int> MaxParallelism = new("--max-parallelism") { Description = "Largest tp and pp the planner may choose", DefaultValueFactory = _ => 1 };
    private static readonly Option<double> RateScale = new("--rate-scale") { Description = "Multiplies the built-in workload's arrival rates", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<int> Seed = new("--seed") { Description = "Seed of the workload", DefaultValueFactory = _ => 7 };
    private static readonly Option<string?> Profile = new("--profile") { Description = "Planner cost profile to use instead of the coefficients calibrated at start" };
    private static readonly Option<string?> ProfileOut = new("--profile-out") { Description = "Write the calibrated coefficients here (planner profile format)" };
    private static readonly Option<string> Device = new("--device") { Description = "auto (CUDA when TorchSharp sees it), cpu, cuda or cuda:N; on a GPU the planner's devices share it", DefaultValueFactory = _ => "auto" };

    public static Command Create()
    {
        var command = new Command("demo", "Serve the built-in model, replay a shifting workload over HTTP with live plan switching, and compare with a static plan.")
        {
            Duration, Window, Quick, Devices, MaxParallelism, RateScale, Seed, Profile, ProfileOut, Device,
        };
        command.SetAction((parse, cancellationToken) => RunAsync(parse, cancellationToken));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var output = parse.InvocationConfiguration.Output;
        var baseline = parse.GetValue(Quick) ? DemoOptions.Quick : new DemoOptions();
        TorchSharp.torch.Device device;
        try { device = OServe.Models.DeviceSelection.Parse(parse.GetValue(Device)!); }
        catch (ArgumentException e) { throw new CliUsageException($"--device: {e.Message}"); }
        var options = baseline with
        {
            DurationS = parse.GetValue(Duration) ?? baseline.DurationS,
            WindowS = parse.GetValue(Window) ?? baseline.WindowS,
            NumDevices = parse.GetValue(Devices),
            MaxParallelism = parse.GetValue(MaxParallelism),
            RateScale = parse.GetValue(RateScale) * baseline.RateScale,
            Seed = parse.GetValue(Seed),
            ProfilePath = parse.GetValue(Profile),
            ProfileOutPath = parse.GetValue(ProfileOut),
            Device = device,
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
        output.WriteLine(summary.Render());
        return summary.LostNone ? OServeCli.ExitOk : OServeCli.ExitFailure;
    }
}
