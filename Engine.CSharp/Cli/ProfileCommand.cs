using System.CommandLine;
using System.Globalization;
using OServe.Engine.Profiling;
using TorchSharp;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve profile</c>: times the real engine's steps on this machine over a grid of batch shapes,
/// fits the cost model's measured step-time terms and writes a profile file that the simulator and
/// planner load in place of their defaults (<c>oserve simulate ... --profile FILE</c>). With
/// <c>--calibration FILE</c> it instead times the engine's forward at a GPU calibration file's
/// shapes and compares layer by layer (<see cref="CalibrationComparison"/>).
/// </summary>
public static class ProfileCommand
{
    public static Command Create()
    {
        var choice = new ModelChoice();
        var threads = new Option<int?>("--threads") { Description = "Torch CPU threads; default: all cores (use what `serve` will use)" };
        var quick = new Option<bool>("--quick") { Description = "A small grid with fewer repeats (seconds, not minutes)" };
        var output = new Option<string>("--output") { Description = "Profile file to write", DefaultValueFactory = _ => "profile.yaml" };
        var noServing = new Option<bool>("--no-serving") { Description = "Skip the serving calibration (a synthetic workload through the real HTTP server that measures the serving step factor and frontend time)" };
        var command = new Command("profile", "Measure this machine's engine step time over batch shapes and write a cost-model profile (--output profile.yaml).")
        {
            threads, quick, output, noServing,
        };
        choice.AddTo(command);
        var calibration = new CalibrationOptions(command);
        command.SetAction(async (parse, ct) =>
        {
            var io = parse.InvocationConfiguration.Output;
            if (parse.GetValue(threads) is { } n)
            {
                if (n < 1) throw new CliUsageException($"--threads: must be at least 1, got {n}");
                torch.set_num_threads(n);
            }
            if (calibration.IsRequested(parse)) return calibration.Run(parse, choice, io);
            var path = parse.GetValue(output)!;
            using var loaded = choice.Load(parse);
            var grid = parse.GetValue(quick) ? ProfileGrid.Quick : ProfileGrid.ForRegimes(OServe.Models.Llama.KernelRegimes.RowBoundaries(loaded.Config));
            io.WriteLine($"model: {loaded.Description}");
            io.WriteLine($"threads: {torch.get_num_threads()}, grid: contexts [{string.Join(", ", grid.Contexts)}], decodes [{string.Join(", ", grid.DecodeCounts)}], " +
                         $"prefill tokens [{string.Join(", ", grid.PrefillTokens)}], {grid.Repeats} passes (median)");
            ProfileRun run;
            try
            {
                run = new StepProfiler(loaded).Run(grid, (done, all) => io.WriteLine($"  timed {done}/{all} steps"));
            }
            catch (ArgumentException e)
            {
                throw new CliUsageException($"--model: {e.Message}");
            }
            var samples = run.Samples;
            var fit = StepTimeFit.Fit(samples.Select(s => s.Timing).ToList());
            Print(io, samples, fit);
            PrintAfterIdle(io, run);
            string source = string.Create(CultureInfo.InvariantCulture,
                $"oserve profile {DateTime.Now:yyyy-MM-dd HH:mm} on {Environment.MachineName}, {Environment.ProcessorCount} cores, {torch.get_num_threads()} threads, {loaded.Name} {loaded.Model.DType} on {OServe.Models.DeviceSelection.Describe(loaded.Model.Device)}");
            ProfileFile.Write(path, source, fit, samples, run.AfterIdleFactor, threads: torch.get_num_threads());
            ServingCalibrationResult? serving = null;
            if (!parse.GetValue(noServing))
            {
                // The steps as profiled so far, read back from the file the simulator will read.
                var profiled = ProfileFile.LoadStepTime(path);
                io.WriteLine();
                io.WriteLine("serving calibration: a synthetic workload through the real HTTP server ...");
                serving = await ServingCalibration.RunAsync(loaded, profiled, log: null, cancellationToken: ct);
                io.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {serving.Workload}: {serving.NumSteps} steps, {serving.NumRequests} requests; serving step factors: {serving.Factors}, frontendSec {serving.FrontendSeconds * 1000:F2} ms"));
            }
            ProfileFile.Write(path, source, fit, samples, run.AfterIdleFactor, serving, torch.get_num_threads());
            // Read back through the cost model, so a file that it would refuse is caught here.
            ProfileFile.Load(path);
            io.WriteLine($"wrote {path}");
            return OServeCli.ExitOk;
        });
        return command;
    }

    private static void PrintAfterIdle(TextWriter io, ProfileRun run)
    {
        var inv = CultureInfo.InvariantCulture;
        io.WriteLine();
        io.WriteLine($"after {StepProfiler.IdleBeforeStep.TotalMilliseconds:F0} ms idle:");
        io.WriteLine($"{"decodes",8} {"context",8} {"prefill",8} {"median ms",10} {"hot ms",9} {"ratio",7}");
        foreach (var x in run.AfterIdle)
            io.WriteLine(string.Create(inv, $"{x.Point.NumDecodes,8} {x.Point.Context,8} {x.Point.PrefillTokens,8} {x.MedianSeconds * 1000,10:F2} {x.BackToBackSeconds * 1000,9:F2} {x.Ratio,7:F2}"));
        io.WriteLine(string.Create(inv, $"afterIdleFactor {run.AfterIdleFactor:F3} (median ratio)"));
    }

    private static void Print(TextWriter io, IReadOnlyList<ProfileSample> samples, StepTimeFitResult fit)
    {
        var inv = CultureInfo.InvariantCulture;
        io.WriteLine();
        io.WriteLine($"{"decodes",8} {"context",8} {"prefill",8} {"median ms",10} {"fit ms",9} {"error",8}");
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            io.WriteLine(string.Create(inv,
                $"{s.Point.NumDecodes,8} {s.Point.Context,8} {s.Point.PrefillTokens,8} {s.MedianSeconds * 1e3,10:F2} {fit.Coefficients.Predict(s.Shape) * 1e3,9:F2} {fit.RelativeErrors[i],8:P1}"));
        }
        io.WriteLine();
        io.WriteLine(string.Create(inv, $"fit: R^2 {fit.RSquared:F4}, max relative error {fit.MaxRelativeError:P1}, mean relative error {fit.MeanRelativeError:P1} over {samples.Count} shapes"));
        foreach (var (key, value) in fit.Coefficients.Entries())
            io.WriteLine(string.Create(inv, $"  {key,-28} {value:G4}"));
    }
}
