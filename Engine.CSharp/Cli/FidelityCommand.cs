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
        var threads = new Option<int?>("--threads") { Description = "Torch CPU threads (use what the profile was measured with)" };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic trace", DefaultValueFactory = _ => 0 };
        var command = new Command("fidelity", "Replay a scaled trace through the real engine (HTTP, measured by the load generator) and the simulator with this machine's profile; compare TTFT and E2E.")
        {
            profile, trace, numRequests, skip, timeScale, lengthScale, maxNumSeqs, maxBatched, kvCacheGib, model, dtype, threads, seed,
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
            };
            Usage(options.Validate);
            var coefficients = ProfileFile.Load(profilePath);
            if (!OServe.Planner.CostModel.CostCoefficientsModule.isMeasured(coefficients))
                throw new CliUsageException($"--profile: {profilePath} holds no measured step-time terms; write it with `oserve profile`");
            if (parse.GetValue(threads) is { } n)
            {
                if (n < 1) throw new CliUsageException($"--threads: must be at least 1, got {n}");
                torch.set_num_threads(n);
            }
            using var loaded = ServeCommand.LoadModel(parse.GetValue(model), null, ServeCommand.ParseDType(parse.GetValue(dtype)!), 1234);
            io.WriteLine($"model: {loaded.Description}; threads {torch.get_num_threads()}; plan: 1 replica, max-num-seqs {options.MaxNumSeqs}, max-num-batched-tokens {options.MaxNumBatchedTokens}");
            FidelityResult result;
            try { result = await FidelityRun.RunAsync(options, loaded, coefficients, io, ct); }
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
        io.WriteLine($"{"metric",-14} {"real s",9} {"sim s",9} {"error",8}");
        void Row(string name, double real, double sim) =>
            io.WriteLine(string.Create(inv, $"{name,-14} {real,9:F3} {sim,9:F3} {FidelityResult.RelativeError(sim, real),8:+0.0%;-0.0%}"));
        Row("mean TTFT", r.Real.MeanTtft, r.Simulated.MeanTtft);
        Row("P99 TTFT", r.Real.P99Ttft, r.Simulated.P99Ttft);
        Row("mean E2E", r.Real.MeanE2e, r.Simulated.MeanE2e);
        Row("P99 E2E", r.Real.P99E2e, r.Simulated.P99E2e);
        Row("duration", r.Real.DurationS, r.Simulated.DurationS);
        io.WriteLine($"requests: {r.Real.NumRequests} compared, {r.NumFailed} failed on the real engine");
    }

    private static void Usage(Action validate)
    {
        try { validate(); }
        catch (ArgumentException e) { throw new CliUsageException(e.Message); }
    }
}
