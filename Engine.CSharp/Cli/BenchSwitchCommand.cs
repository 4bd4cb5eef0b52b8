using System.CommandLine;
using OServe.Engine.Orchestration;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve bench-switch</c>: hot vs cold plan switch time, and requests served during a switch,
/// on the serving runtime; with <c>--layouts</c>, the replica-level layout changes (tp1x2 -> tp2,
/// tp2 -> pp2, ...) of a ~110M model built from peer shards vs reloaded from safetensors.
/// </summary>
public static class BenchSwitchCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "A llama2.c .bin or Hugging Face directory; default: the built-in random-weight model" };
        var cluster = new Option<string>("--cluster") { Description = "Cluster (file or built-in name) whose first node holds the replicas", DefaultValueFactory = _ => "cpu-logical-4" };
        var repeats = new Option<int>("--repeats") { Description = "Switches (and windows) measured per variant", DefaultValueFactory = _ => 3 };
        var concurrency = new Option<int>("--concurrency") { Description = "Closed-loop clients during the measurement", DefaultValueFactory = _ => 8 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens each client request generates", DefaultValueFactory = _ => 32 };
        var window = new Option<double>("--window") { Description = "Seconds of the served-requests window", DefaultValueFactory = _ => 3.0 };
        var layouts = new Option<bool>("--layouts") { Description = "Time TP/PP layout changes of one replica (peer copies vs page-cache and disk reload) instead of a live switch" };
        var command = new Command("bench-switch", "Measure a live plan switch: hot (peer weight copy + KV move) vs cold (reload from disk + drain), and requests served during a switch window vs none.")
        {
            model, cluster, repeats, concurrency, maxTokens, window, layouts,
        };
        command.SetAction(parse =>
        {
            int r = parse.GetValue(repeats), c = parse.GetValue(concurrency), t = parse.GetValue(maxTokens);
            double w = parse.GetValue(window);
            if (r < 1) throw new CliUsageException($"--repeats: must be at least 1, got {r}");
            if (parse.GetValue(layouts))
                return OServe.Models.Parallelism.SwitchBenchmark.Run(
                    new OServe.Models.Parallelism.SwitchBenchmarkOptions { Repeats = r }, parse.InvocationConfiguration.Output);
            if (c < 1) throw new CliUsageException($"--concurrency: must be at least 1, got {c}");
            if (t < 1) throw new CliUsageException($"--max-tokens: must be at least 1, got {t}");
            if (!(w > 0)) throw new CliUsageException($"--window: must be positive, got {w}");
            var clusterValue = Catalog.Cluster(parse.GetValue(cluster)!);
            if (clusterValue.Nodes.Count == 0 || clusterValue.Nodes[0].Gpus < 3)
                throw new CliUsageException($"--cluster: {clusterValue.Name} needs at least 3 devices on its first node for the benchmark's change");
            using var loaded = parse.GetValue(model) is { } path ? ServeCommand.LoadModel(path, null, TorchSharp.torch.ScalarType.Float32, 0) : null;
            return SwitchBenchmark.Run(new SwitchBenchOptions
            {
                Model = loaded, Cluster = clusterValue, Repeats = r, Concurrency = c, MaxTokens = t, WindowSeconds = w,
            }, parse.InvocationConfiguration.Output);
        });
        return command;
    }
}
