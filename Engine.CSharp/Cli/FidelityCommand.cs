using System.CommandLine;
using System.Globalization;
using OServe.Engine.Profiling;
using TorchSharp;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve fidelity --profile P</c>: the simulator checked against the real engine on this machine.
/// The same scaled trace head goes through the real server (measured over HTTP by the load
/// generator) and through the simulator with the profile; prints mean and P99 of TTFT and E2E for
/// both and the simulator's relative error.
/// </summary>
public static class FidelityCommand
{
    public static Command Create()
    {
        var profile = new Option<string?>("--profile") { Description = "Profile of this machine written by `oserve profile` (required)" };
        var trace = new Option<string?>("--trace") { Description = "Trace file (Azure, BurstGPT, Mooncake); default: the synthetic Azure-conversation stream" };
        var numRequests = new Option<int>("--num-requests") { Description = "Requests from the head of the trace", DefaultValueFactory = _ => 40 };
        var skip = new Option<int>("--skip") { Description = "Trace requests to skip before the head", DefaultValueFactory = _ => 0 };
        var timeScale = new Option<double>("--time-scale") { Description = "Multiply the trace's arrival gaps (0.5 = twice the rate)", DefaultValueFactory = _ => 1.0 };
        var lengthScale = new Option<double>("--length-scale") { Description = "Multiply prompt and output lengths (then capped to the model's context)", DefaultValueFactory = _ => 0.1 };
        var maxNumSeqs = new Option<int>("--max-num-seqs") { Description = "The plan's replica: most sequences in one step", DefaultValueFactory = _ => 8 };
        var maxBatched = new Option<int>("--max-num-batched-tokens") { Description = "The plan's replica: token budget of one step", DefaultValueFactory = _ => 2048 };
        var kvCacheGib = new Option<double>("--kv-cache-gib") { Description = "Memory for the paged KV cache, GiB", DefaultValueFactory = _ => 0.5 };
        var model = new Option<string?>("--model") { Description = "Model to serve (as `serve --model`); default: the built-in random-weight model" };
        var dtype = new Option<string>("--dtype") { Description = "float32, bfloat16 or float16", DefaultValueFactory = _ => "float32" };
        var threads = new Option<int?>("--threads") { Description = "Torch CPU threads; default: what the profile was measured with" };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic trace", DefaultValueFactory = _ => 0 };
        var repeats = new Option<int>("--repeats") { Description = "Real runs of the same requests; the simulator is compared with each metric's median over them", DefaultValueFactory = _ => 1 };
        var command = new Command("fidelity", "Replay a scaled trace through the real engine (HTTP, measured by the load generator) and the simulator with this machine's profile; compare TTFT and E2E.")
        {
            profile, trace, numRequests, skip, timeScale, lengthScale, maxNumSeqs, maxBatched, kvCacheGib, model, dtype, threads, seed, repeats,
        };
        command.SetAction(async (parse, ct) =>
        {
            var io = parse.InvocationConfiguration.Output;
            var profilePath = parse.GetValue(profile) ?? throw new CliUsageException("--profile: required (write one with `oserve profile --output profile.yaml`)");
            var options = new FidelityOptions
            {
                TracePath = parse.GetValue(trace),
                NumRequests = parse.GetValue(numRequests),
                Skip = parse.GetValue(skip),
                TimeScale = parse.GetValue(timeScale),
                LengthScale = parse.GetValue(lengthScale),
                MaxNumSeqs = parse.GetValue(maxNumSeqs),
                MaxNumBatchedTokens = parse.GetValue(maxBatched),
                KvCacheGib = parse.GetValue(kvCacheGib),
                Seed = parse.GetValue(seed),
                Repeats = parse.GetValue(repeats),
            };
            Usage(options.Validate);
            var stepTime = ProfileFile.LoadStepTime(profilePath);
            int? profiledThreads = ProfileFile.LoadThreads(profilePath);
            if ((parse.GetValue(threads) ?? profiledThreads) is { } n)
            {
                if (n < 1) throw new CliUsageException($"--threads: must be at least 1, got {n}");
                torch.set_num_threads(n);
            }
            if (profiledThreads is { } p && p != torch.get_num_threads())
                io.WriteLine($"warning: the profile was measured with {p} torch threads, this run uses {torch.get_num_threads()}: its step times do not apply");
            using var loaded = ServeCommand.LoadModel(parse.GetValue(model), null, ServeCommand.ParseDType(parse.GetValue(dtype)!), 1234);
            io.WriteLine($"model: {loaded.Description}; threads {torch.get_num_threads()}; plan: 1 replica, max-num-seqs {options.MaxNumSeqs}, max-num-batched-tokens {options.MaxNumBatchedTokens}");
            io.WriteLine((stepTime.Table is { } table
                ? $"step time: the profile's linear fit plus its {table.NumPoints} measured points (residual table)"
                : "step time: the profile's linear fit (the file has no measured points)")
                + string.Create(CultureInfo.InvariantCulture,
                    $"; x{stepTime.AfterIdleFactor:F2} after an idle wait; while serving {stepTime.Serving}; {stepTime.FrontendSeconds * 1000:F2} ms frontend per request"));
            FidelityResult result;
            try { result = await FidelityRun.RunAsync(options, loaded, stepTime, io, ct); }
            catch (ArgumentException e) { throw new CliUsageException(e.Message); }
            Print(io, result);
            return OServeCli.ExitOk;
        });
        return command;
    }

    public static void Print(TextWriter io, FidelityResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        io.WriteLine();
        io.WriteLine($"fidelity: {r.Workload}");
        foreach (var note in r.Notes) io.WriteLine($"  note: {note}");
        bool several = r.Runs.Count > 1;
        if (several) io.WriteLine($"real: the median of each metric over {r.Runs.Count} runs; spread: (max - min) / median over them");
        var lin = r.SimulatedLinear;
        io.WriteLine($"{"metric",-14} {"real s",9} {"sim s",9} {"error",8}" + (several ? $" {"spread",7}" : "")
            + $" {"sim@speed s",12} {"error",8}" + (lin is null ? "" : $" {"linear-only s",14} {"error",8}"));
        void Row(string name, Func<LatencySummary, double> metric)
        {
            double real = metric(r.Real);
            string Cell(double sim, int width) => string.Create(inv, $" {sim.ToString("F3", inv).PadLeft(width)} {FidelityResult.RelativeError(sim, real),8:+0.0%;-0.0%}");
            var line = string.Create(inv, $"{name,-14} {real,9:F3}") + Cell(metric(r.Simulated), 9)
                + (several ? string.Create(inv, $" {r.RealSpread(metric),7:P0}") : "")
                + Cell(metric(r.SimulatedAtSpeed), 12)
                + (lin is null ? "" : Cell(metric(lin), 14));
            io.WriteLine(line);
        }
        Row("mean TTFT", x => x.MeanTtft);
        Row("P99 TTFT", x => x.P99Ttft);
        Row("mean E2E", x => x.MeanE2e);
        Row("P99 E2E", x => x.P99E2e);
        Row("duration", x => x.DurationS);
        io.WriteLine($"requests: {r.Real.NumRequests} compared, {r.NumFailed} failed on the real engine" + (several ? $" (over {r.Runs.Count} runs)" : ""));
        io.WriteLine("sim@speed: the profile's step times x this machine's speed during the run (the mean of the speed checks before and after it)");
        for (int i = 0; i < r.Runs.Count; i++)
        {
            var run = r.Runs[i];
            var speed = string.Create(inv, $"machine speed against the profile (reference steps, measured / profiled): x{run.SpeedBefore:F2} before the run, x{run.SpeedAfter:F2} after");
            io.WriteLine(several
                ? string.Create(inv, $"run {i + 1}: real mean TTFT {run.Real.MeanTtft:F3} P99 TTFT {run.Real.P99Ttft:F3} mean E2E {run.Real.MeanE2e:F3} P99 E2E {run.Real.P99E2e:F3} s; {speed}")
                : speed);
        }
        PrintSteps(io, r.Steps);
    }

    private static void PrintSteps(TextWriter io, StepComparison s)
    {
        if (s.NumSteps == 0) return;
        var inv = CultureInfo.InvariantCulture;
        io.WriteLine();
        io.WriteLine(string.Create(inv,
            $"real engine steps: {s.NumSteps}, {s.MeasuredSeconds:F3} s measured, {s.PredictedSeconds:F3} s predicted by the profile ({FidelityResult.RelativeError(s.PredictedSeconds, s.MeasuredSeconds):+0.0%;-0.0%}), mean |error| per step {s.MeanAbsRelativeError:P1}"));
        io.WriteLine(string.Create(inv,
            $"between busy steps (gaps < {StepComparison.IdleGapSeconds * 1000:F0} ms): median {s.MedianGapSeconds * 1000:F2} ms, mean {s.MeanGapSeconds * 1000:F2} ms"));
        io.WriteLine(string.Create(inv,
            $"measured / predicted: {s.AfterIdleRatio:F2} over the {s.NumAfterIdle} steps after an idle gap, {s.BackToBackRatio:F2} over the {s.NumSteps - s.NumAfterIdle} back-to-back steps"));
        io.WriteLine($"{"step kind",-14} {"count",6} {"measured ms",12} {"predicted ms",13}");
        foreach (var c in s.Classes)
            io.WriteLine(string.Create(inv, $"{c.Kind,-14} {c.Count,6} {c.MeanMeasured * 1000,12:F2} {c.MeanPredicted * 1000,13:F2}"));
    }

    private static void Usage(Action validate)
    {
        try { validate(); }
        catch (ArgumentException e) { throw new CliUsageException(e.Message); }
    }
}
