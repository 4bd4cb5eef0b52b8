using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Models;
using OServe.Models.Loading;

namespace OServe.Engine.Orchestration;

public sealed record SwitchBenchOptions
{
    /// <summary>Null: the built-in random-weight model.</summary>
    public LoadedModel? Model { get; init; }
    public required Cluster Cluster { get; init; }
    public int Repeats { get; init; } = 3;
    /// <summary>Closed-loop clients keeping the replicas busy throughout.</summary>
    public int Concurrency { get; init; } = 8;
    public int MaxTokens { get; init; } = 32;
    public double WindowSeconds { get; init; } = 3;
}

/// <summary>
/// Hot switch (weights copied from a running peer, requests moved with their KV cache) against a
/// cold one (weights read again from a safetensors file on disk, requests drained) for the same
/// change, 2 x tp1 on node0/0,1 to tp1 on node0/0,2 (one replica replaced), under a steady closed-loop load;
/// then requests finished in a window that starts with a switch against the same window without one.
/// Prints figures only; no pass/fail.
/// </summary>
public static class SwitchBenchmark
{
    public static int Run(SwitchBenchOptions options, TextWriter output) => RunAsync(options, output).GetAwaiter().GetResult();

    public static async Task<int> RunAsync(SwitchBenchOptions options, TextWriter output)
    {
        var model = options.Model ?? BuiltInModel.Create(new BuiltInModelOptions());
        var dir = Directory.CreateTempSubdirectory("oserve-bench-switch-");
        try
        {
            // The cold path reads a real file, as a reload from a checkpoint would (it may come from the page cache).
            SafetensorsWriter.Write(Path.Combine(dir.FullName, "model.safetensors"), model.Model.Weights.Where(w => IsStored(w.Key, model)));
            var storage = new CheckpointWeightStore(dir.FullName);
            var gpuType = options.Cluster.GpuTypes[0].Name;
            Plan PlanOn(int version, params string[] devices) => new()
            {
                Version = version, Model = model.Name, Cluster = options.Cluster.Name, Planner = "bench-switch",
                RequestTypes = [new RequestTypeSpec { Name = "chat", InputTokens = 16, OutputTokens = options.MaxTokens }],
                Replicas = devices.Select((d, i) => new ReplicaSpec { Id = $"r{d[^1]}", GpuType = gpuType, Devices = [d] }).ToArray(),
                Routing = [new RoutingEntry { Type = "chat", Weights = devices.ToDictionary(d => $"r{d[^1]}", _ => 1.0) }],
            };
            var initial = PlanOn(1, "node0/0", "node0/1");
            var changed = PlanOn(2, "node0/0", "node0/2");
            var hot = new SwitchOptions { Weights = WeightSourcePolicy.Peer, InFlight = InFlightPolicy.Migrate };
            var cold = new SwitchOptions { Weights = WeightSourcePolicy.Storage, InFlight = InFlightPolicy.Drain };
            var runtimeOptions = new PlanRuntimeOptions { Engine = new EngineSettings { MaxNumSeqs = 32, KvCacheGib = 0.25 } };
            await using var runtime = PlanRuntime.Start(initial, options.Cluster, model, storage, runtimeOptions);
            output.WriteLine($"model: {model.Description}");
            output.WriteLine($"weights per replica: {runtime.Builder.WeightBytes / 1e6:F1} MB; change: {Describe(initial)} -> {Describe(changed)}; " +
                $"load: {options.Concurrency} closed-loop clients, {options.MaxTokens} tokens each");

            var finishes = new ConcurrentQueue<double>();
            using var stop = new CancellationTokenSource();
            var clock = Stopwatch.StartNew();
            var clients = Enumerable.Range(0, options.Concurrency).Select(c => Task.Run(() => ClientAsync(runtime, c, options.MaxTokens, finishes, clock, stop.Token))).ToArray();
            await Task.Delay(500); // warm up

            var hotTimes = new List<SwitchReport>();
            var coldTimes = new List<SwitchReport>();
            for (int r = 0; r < options.Repeats; r++)
            {
                hotTimes.Add(await runtime.ApplyAsync(changed with { Version = runtime.Current.Version + 1 }, hot));
                await runtime.ApplyAsync(initial with { Version = runtime.Current.Version + 1 }, hot);
                coldTimes.Add(await runtime.ApplyAsync(changed with { Version = runtime.Current.Version + 1 }, cold));
                await runtime.ApplyAsync(initial with { Version = runtime.Current.Version + 1 }, hot);
            }
            output.WriteLine();
            output.WriteLine("switch             total s   build s  retire s  peer MB  disk MB  moved  drained");
            foreach (var (name, reports) in new[] { ("hot (peer+KV move)", hotTimes), ("cold (disk+drain)", coldTimes) })
                foreach (var rep in reports)
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{name,-18} {rep.TotalSeconds,8:F3} {rep.BuildSeconds,9:F3} {rep.RetireSeconds,9:F3} {rep.BytesFromPeers / 1e6,8:F1} {rep.BytesFromStorage / 1e6,8:F1} {rep.NumRequestsMigrated,6} {rep.NumRequestsDrained,8}"));
            double hotMedian = Median(hotTimes.Select(t => t.TotalSeconds)), coldMedian = Median(coldTimes.Select(t => t.TotalSeconds));
            double hotBuild = Median(hotTimes.Select(t => t.BuildSeconds)), coldBuild = Median(coldTimes.Select(t => t.BuildSeconds));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"median switch: hot {hotMedian:F3} s, cold {coldMedian:F3} s, cold/hot = {coldMedian / hotMedian:F2}x " +
                $"(weights only: hot {hotBuild:F3} s, cold {coldBuild:F3} s, {coldBuild / hotBuild:F2}x)"));

            output.WriteLine();
            output.WriteLine($"requests finished in a {options.WindowSeconds:F1} s window (mean of {options.Repeats}):");
            var baseline = new List<int>();
            var withHot = new List<int>();
            var withCold = new List<int>();
            for (int r = 0; r < options.Repeats; r++)
            {
                baseline.Add(await WindowAsync(finishes, clock, options.WindowSeconds, null));
                withHot.Add(await WindowAsync(finishes, clock, options.WindowSeconds,
                    () => runtime.ApplyAsync(changed with { Version = runtime.Current.Version + 1 }, hot)));
                await runtime.ApplyAsync(initial with { Version = runtime.Current.Version + 1 }, hot);
                withCold.Add(await WindowAsync(finishes, clock, options.WindowSeconds,
                    () => runtime.ApplyAsync(changed with { Version = runtime.Current.Version + 1 }, cold)));
                await runtime.ApplyAsync(initial with { Version = runtime.Current.Version + 1 }, hot);
            }
            double b = baseline.Average(), h = withHot.Average(), c = withCold.Average();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  no switch          {b,7:F1}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  hot switch         {h,7:F1}  ({h / b:P0} of no switch)"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  cold switch        {c,7:F1}  ({c / b:P0} of no switch)"));

            stop.Cancel();
            await Task.WhenAll(clients);
            return 0;
        }
        finally
        {
            dir.Delete(recursive: true);
            if (options.Model is null) model.Dispose();
        }
    }

    private static async Task<int> WindowAsync(ConcurrentQueue<double> finishes, Stopwatch clock, double seconds, Func<Task<SwitchReport>>? change)
    {
        double start = clock.Elapsed.TotalSeconds;
        var switching = change?.Invoke();
        await Task.Delay(TimeSpan.FromSeconds(seconds));
        double end = start + seconds;
        if (switching is not null) await switching;
        return finishes.Count(t => t >= start && t < end);
    }

    private static async Task ClientAsync(PlanRuntime runtime, int client, int maxTokens, ConcurrentQueue<double> finishes, Stopwatch clock, CancellationToken stop)
    {
        var prompt = runtime.Encode($"client {client} asks for a story about a dog and a cat", addBos: true);
        var sampling = new SamplingParams { MaxTokens = maxTokens, Temperature = 0, IgnoreEos = true };
        for (long n = 0; !stop.IsCancellationRequested; n++)
        {
            try
            {
                await foreach (var _ in runtime.GenerateAsync(new GenerationRequest($"bench-{client}-{n}", prompt, sampling), CancellationToken.None)) { }
                finishes.Enqueue(clock.Elapsed.TotalSeconds);
            }
            catch (AdmissionRejectedException)
            {
                await Task.Delay(50);
            }
        }
    }

    private static bool IsStored(string name, LoadedModel model) =>
        !(model.Config.TieWordEmbeddings && name == OServe.Models.Llama.LlamaWeightNames.Classifier);

    private static string Describe(Plan plan) => string.Join("+", plan.Replicas.Select(r => $"tp{r.Tp}@{r.Devices[0]}"));

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
