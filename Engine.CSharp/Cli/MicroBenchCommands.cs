using System.CommandLine;
using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Models;
using OServe.Models.Benchmarks;
using OServe.Models.Tokenization;
using TorchSharp;

namespace OServe.Engine.Cli;

/// <summary>
/// Benchmarks of single parts, printing figures (never run in tests): <c>oserve bench-model</c>
/// (decode tokens/s against the device's memory-bandwidth bound, prefill against its matmul peak,
/// the engine loop's host time per step, and the targets of issue 16) and <c>oserve bench-scheduler</c>
/// (the scheduler's hot path on a virtual clock, as the simulator drives it). Use a Release build.
/// </summary>
public static class MicroBenchCommands
{
    public static Command BenchModel()
    {
        var steps = new Option<int>("--steps") { Description = "Timed decode steps per case", DefaultValueFactory = _ => 20 };
        var threads = new Option<int>("--threads") { Description = "Torch intra-op threads (CPU)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var device = new Option<string>("--device") { Description = "auto (CUDA when TorchSharp sees it), cpu, cuda or cuda:N", DefaultValueFactory = _ => "auto" };
        var dtype = new Option<string>("--dtype") { Description = "auto (float32 and bfloat16 on the CPU, bfloat16 on a GPU), or one of float32, bfloat16, float16", DefaultValueFactory = _ => "auto" };
        var card = new Option<string?>("--model-card") { Description = "Model card(s) whose exact shape to measure, comma-separated (e.g. Llama-2-7B,Llama-3-8B); default: a ~110M-parameter Llama" };
        var random = new Option<bool>("--random-weights") { Description = "Accepted for symmetry with serve: this benchmark always uses random weights" };
        var layers = new Option<int?>("--layers") { Description = "With --model-card: only this many of the card's layers" };
        var batches = new Option<string?>("--batch") { Description = "Comma-separated batch sizes; default 1,32 (CPU) or 1,8,32,128,256 (GPU)" };
        var context = new Option<int>("--context") { Description = "Tokens already in each sequence's KV cache when decoding starts", DefaultValueFactory = _ => 128 };
        var prefill = new Option<int?>("--prefill") { Description = "Also time one prompt of this many tokens (0: none); default 2048 on a GPU, none on the CPU" };
        var engineBatch = new Option<int?>("--engine-batch") { Description = "Also run the engine loop at this batch and report its own host time per step (0: none); default 64 on a GPU, none on the CPU" };
        var hbm = new Option<double?>("--hbm-gbps") { Description = "Nominal memory bandwidth for the decode bound, GB/s (H200: 4800); default: measured" };
        var peak = new Option<double?>("--peak-tflops") { Description = "Matmul peak to rate prefill against, TFLOP/s (H200: 780); default: measured" };
        var json = new Option<string?>("--json") { Description = "Also write the figures as JSON here (one file per card: NAME-CARD.json when several)" };
        var seed = new Option<long>("--seed") { Description = "Seed of the random weights", DefaultValueFactory = _ => 42 };
        var command = new Command("bench-model", "Decode tokens/s of a random Llama (a ~110M default or a model card's shape) against the memory-bandwidth bound, prefill against the matmul peak, and the engine loop's host time per step.")
        {
            steps, threads, device, dtype, card, random, layers, batches, context, prefill, engineBatch, hbm, peak, json, seed,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            torch.Device dev;
            try { dev = DeviceSelection.Parse(parse.GetValue(device)!); }
            catch (ArgumentException e) { throw new CliUsageException($"--device: {e.Message}"); }
            bool cuda = dev.type == DeviceType.CUDA;
            string dtypeText = parse.GetValue(dtype)!;
            IReadOnlyList<torch.ScalarType> dtypes = dtypeText.Equals("auto", StringComparison.OrdinalIgnoreCase)
                ? (cuda ? [torch.ScalarType.BFloat16] : [torch.ScalarType.Float32, torch.ScalarType.BFloat16])
                : [ServeCommand.ParseDType(dtypeText)];
            var baseline = new DecodeBenchmarkOptions
            {
                Device = dev,
                DTypes = dtypes,
                Steps = Positive(parse.GetValue(steps), "--steps"),
                Threads = Positive(parse.GetValue(threads), "--threads"),
                BatchSizes = parse.GetValue(batches) is { } b ? ParseList(b, "--batch") : cuda ? [1, 8, 32, 128, 256] : [1, 32],
                ContextTokens = Positive(parse.GetValue(context), "--context"),
                PrefillTokens = NonNegative(parse.GetValue(prefill) ?? (cuda ? 2048 : 0), "--prefill"),
                NominalBandwidthGbps = PositiveOrNull(parse.GetValue(hbm), "--hbm-gbps"),
                PeakTflops = PositiveOrNull(parse.GetValue(peak), "--peak-tflops"),
                Seed = parse.GetValue(seed),
            };
            int loopBatch = NonNegative(parse.GetValue(engineBatch) ?? (cuda ? 64 : 0), "--engine-batch");
            var cards = parse.GetValue(card)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries) ?? [];
            if (cards.Length == 0 && parse.GetValue(layers) is not null) throw new CliUsageException("--layers: only with --model-card");
            var runs = cards.Length == 0 ? [baseline] : cards.Select(name =>
            {
                var c = Catalog.Model(name);
                try
                {
                    return baseline with { Config = CardModels.ConfigOf(c, parse.GetValue(layers)), ModelName = c.Name };
                }
                catch (ArgumentException e) { throw new CliUsageException($"--model-card {name}: {e.Message}"); }
            }).ToList();
            foreach (var run in runs)
            {
                var options = loopBatch == 0 ? run : run with
                {
                    EngineLoop = model => EngineLoopBenchmark.Run(model, new FoldedTokenizer(TokenizerLoader.Gpt2(), model.Config.VocabSize), loopBatch),
                };
                var report = DecodeBenchmark.Measure(options, output);
                BenchmarkReport.Print(report, output);
                if (parse.GetValue(json) is { } path)
                {
                    string file = runs.Count == 1 ? path
                        : Path.Combine(Path.GetDirectoryName(path) ?? "", $"{Path.GetFileNameWithoutExtension(path)}-{run.ModelName}{Path.GetExtension(path)}");
                    BenchmarkReport.WriteJson(report, file);
                    output.WriteLine($"wrote {file}");
                }
                output.WriteLine();
            }
            return OServeCli.ExitOk;
        });
        return command;
    }

    public static Command BenchScheduler()
    {
        var requests = new Option<int>("--requests") { Description = "Requests to push through one replica", DefaultValueFactory = _ => 20000 };
        var rate = new Option<double>("--rate") { Description = "Arrival rate, requests/s of virtual time", DefaultValueFactory = _ => 8 };
        var command = new Command("bench-scheduler", "Scheduler + engine core on a virtual clock: microseconds and bytes allocated per step.")
        {
            requests, rate,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var r = SchedulerBenchmark.Run(Positive(parse.GetValue(requests), "--requests"), parse.GetValue(rate) > 0 ? parse.GetValue(rate) : throw new CliUsageException("--rate: must be positive"));
            output.WriteLine($"requests {r.NumRequests}, steps {r.NumSteps}, tokens {r.NumTokens}, preemptions {r.NumPreemptions}");
            output.WriteLine($"virtual time {r.SimulatedSeconds:F0} s simulated in {r.WallSeconds:F2} s wall");
            output.WriteLine($"{r.MicrosecondsPerStep:F2} us per step, {(double)r.AllocatedBytes / r.NumSteps:F0} bytes allocated per step");
            return OServeCli.ExitOk;
        });
        return command;
    }

    private static int Positive(int value, string option) =>
        value >= 1 ? value : throw new CliUsageException($"{option}: must be at least 1, got {value}");

    private static int NonNegative(int value, string option) =>
        value >= 0 ? value : throw new CliUsageException($"{option}: must not be negative, got {value}");

    private static double? PositiveOrNull(double? value, string option) =>
        value is null or > 0 ? value : throw new CliUsageException($"{option}: must be positive, got {value}");

    private static int[] ParseList(string text, string option) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(x => int.TryParse(x, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v >= 1 ? v
                : throw new CliUsageException($"{option}: '{x}' is not a positive integer"))
            .ToArray() is { Length: > 0 } list ? list : throw new CliUsageException($"{option}: no values");
}
