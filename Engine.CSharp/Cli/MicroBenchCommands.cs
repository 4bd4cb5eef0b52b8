using System.CommandLine;
using OServe.Engine.Scheduling;
using OServe.Models.Benchmarks;

namespace OServe.Engine.Cli;

/// <summary>
/// Benchmarks of single parts, printing figures (never run in tests): <c>oserve bench-model</c>
/// (decode tokens/s against this machine's memory-bandwidth bound) and <c>oserve bench-scheduler</c>
/// (the scheduler's hot path on a virtual clock, as the simulator drives it). Use a Release build.
/// </summary>
public static class MicroBenchCommands
{
    public static Command BenchModel()
    {
        var steps = new Option<int>("--steps") { Description = "Timed decode steps per case", DefaultValueFactory = _ => 20 };
        var threads = new Option<int>("--threads") { Description = "Torch intra-op threads", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = new Command("bench-model", "Decode tokens/s of a ~100M-parameter random Llama (FP32, BF16; batch 1 and 32) against the memory-bandwidth bound of this machine.")
        {
            steps, threads,
        };
        command.SetAction(parse =>
        {
            var options = new DecodeBenchmarkOptions { Steps = Positive(parse.GetValue(steps), "--steps"), Threads = Positive(parse.GetValue(threads), "--threads") };
            return DecodeBenchmark.Run(options, parse.InvocationConfiguration.Output);
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
}
