using System.Diagnostics;
using OServe.Models.Llama;
using OServe.Models.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// Hot switch vs cold reload for the same deployment change. Hot: the new replicas take their
/// shards from devices that hold them (the old replicas are still alive, as during a live
/// switch). Cold: the new replicas read their shards from the model's safetensors file. Both
/// build the same replicas on the same devices; the figure is cold time / hot time.
/// </summary>
public static class SwitchBenchmark
{
    /// <summary>One deployment change: replicas before (still serving) and after, each as (tp, pp, device indices).</summary>
    public sealed record Change(string Name, (int Tp, int Pp, int[] Devices)[] Before, (int Tp, int Pp, int[] Devices)[] After);

    /// <param name="ColdMilliseconds">reload with the file in the page cache (memory-speed reads).</param>
    /// <param name="DiskMilliseconds">reload after evicting the file from the page cache; null where eviction is unavailable.</param>
    public sealed record Result(string Change, long Bytes, double HotMilliseconds, double ColdMilliseconds, double? DiskMilliseconds, long HotBytesFromStorage)
    {
        public double Ratio => ColdMilliseconds / HotMilliseconds;
        public double? DiskRatio => DiskMilliseconds / HotMilliseconds;
    }

    public static IReadOnlyList<Change> Changes { get; } =
    [
        new("tp1 x2 -> tp2", [(1, 1, [0]), (1, 1, [1])], [(2, 1, [0, 1])]),
        new("tp2 -> tp1 x2", [(2, 1, [0, 1])], [(1, 1, [0]), (1, 1, [1])]),
        new("tp2 -> pp2", [(2, 1, [0, 1])], [(1, 2, [0, 1])]),
        new("tp1 -> tp4", [(1, 1, [0])], [(4, 1, [0, 1, 2, 3])]),
        new("tp2 -> tp2 on other devices", [(2, 1, [0, 1])], [(2, 1, [2, 3])]),
    ];

    public static int Run(SwitchBenchmarkOptions options, TextWriter output)
    {
        var config = new LlamaConfig
        {
            Dim = options.Dim, HiddenDim = options.HiddenDim, NumLayers = options.NumLayers, NumHeads = options.NumHeads,
            NumKvHeads = options.NumKvHeads, VocabSize = options.VocabSize, MaxSeqLen = 256, TieWordEmbeddings = true,
        };
        config.Validate("switch benchmark options");
        if (options.Repeats < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Repeats, "Repeats must be at least 1");
        var pool = DevicePool.Create(options.LogicalDevices);
        if (pool.Devices.Count < 4)
        {
            output.WriteLine($"switch benchmark: needs 4 devices, the pool has {pool.Devices.Count} ({pool})");
            return 1;
        }

        bool ownDirectory = options.WorkDirectory is null;
        string directory = options.WorkDirectory ?? Directory.CreateTempSubdirectory("oserve-switch-").FullName;
        string file = Path.Combine(directory, "model.safetensors");
        try
        {
            using (var weights = RandomWeights.Create(config, options.Seed))
            using (var scope = NewDisposeScope())
                SafetensorsWriter.Write(file, LlamaWeightNames.Expected(config).Select(e => KeyValuePair.Create(e.Name, weights.Load(e.Name).to(options.DType))));
            output.WriteLine(
                $"switch benchmark: {config.ParameterCount / 1e6:F1}M parameters ({new FileInfo(file).Length / 1e6:F0} MB {options.DType} safetensors), " +
                $"{pool}, median of {options.Repeats}, TorchSharp {torch.__version__}");
            output.WriteLine("hot   = copy every shard from devices that hold it while the old replicas are still alive");
            output.WriteLine("cache = read every shard from the safetensors file while it sits in the OS page cache (memory-speed reads)");
            output.WriteLine("disk  = the same read after evicting the file from the page cache (fsync + posix_fadvise DONTNEED)");
            output.WriteLine();

            var results = Changes.Select(c => Measure(c, config, pool, file, options)).ToList();
            output.WriteLine($"{"change",-28} {"MB",7} {"hot ms",8} {"cache ms",9} {"disk ms",9} {"cache/hot",10} {"disk/hot",9} {"hot MB from storage",20}");
            foreach (var r in results)
            {
                string disk = r.DiskMilliseconds is { } d ? $"{d,9:F1}" : $"{"n/a",9}";
                string diskRatio = r.DiskRatio is { } q ? $"{q,8:F1}x" : $"{"n/a",9}";
                output.WriteLine($"{r.Change,-28} {r.Bytes / 1e6,7:F1} {r.HotMilliseconds,8:F1} {r.ColdMilliseconds,9:F1} {disk} {r.Ratio,9:F1}x {diskRatio} {r.HotBytesFromStorage / 1e6,20:F1}");
            }
            return 0;
        }
        finally
        {
            if (ownDirectory) Directory.Delete(directory, recursive: true);
            else File.Delete(file);
        }
    }

    private enum Mode { Hot, Cache, Disk }

    /// <summary>
    /// Every repeat rebuilds the old deployment from the file (untimed), then builds the new one
    /// hot, from the page cache and from disk while the old one is alive, as during a live switch,
    /// so all three start from the same memory state; the order flips each repeat so none always
    /// gets the pages the previous one freed.
    /// </summary>
    private static Result Measure(Change change, LlamaConfig config, DevicePool pool, string file, SwitchBenchmarkOptions options)
    {
        var times = new Dictionary<Mode, List<double>> { [Mode.Hot] = [], [Mode.Cache] = [], [Mode.Disk] = [] };
        long bytes = 0, hotFromStorage = 0;
        for (int i = 0; i < options.Repeats; i++)
        {
            var before = Build(change.Before, config, pool, file, options.DType, copyFromPeers: false, out _);
            try
            {
                Mode[] order = i % 2 == 0 ? [Mode.Hot, Mode.Cache, Mode.Disk] : [Mode.Disk, Mode.Cache, Mode.Hot];
                foreach (var mode in order)
                {
                    if (mode == Mode.Disk && !PageCache.TryEvict(file)) continue;
                    var clock = Stopwatch.StartNew();
                    var after = Build(change.After, config, pool, file, options.DType, copyFromPeers: mode == Mode.Hot, out var reports);
                    times[mode].Add(clock.Elapsed.TotalMilliseconds);
                    Dispose(after);
                    if (mode != Mode.Hot) continue;
                    hotFromStorage = reports.Sum(r => r.BytesFromStorage);
                    bytes = reports.Sum(r => r.TotalBytes);
                }
            }
            finally
            {
                Dispose(before);
            }
        }
        var disk = times[Mode.Disk];
        return new Result(change.Name, bytes, Median(times[Mode.Hot]), Median(times[Mode.Cache]), disk.Count == 0 ? null : Median(disk), hotFromStorage);
    }

    private static List<ParallelLlama> Build(
        (int Tp, int Pp, int[] Devices)[] replicas, LlamaConfig config, DevicePool pool, string file, ScalarType dtype, bool copyFromPeers, out List<TransferReport> reports)
    {
        var built = new List<ParallelLlama>();
        reports = [];
        using var source = SafetensorsWeightSource.OpenDirectory(Path.GetDirectoryName(file)!);
        try
        {
            foreach (var (tp, pp, devices) in replicas)
            {
                var replica = ParallelLlama.Create(config, devices.Select(d => pool.Devices[d]).ToArray(), tp, pp, source, dtype,
                    new ParallelLlamaOptions { CopyFromPeers = copyFromPeers });
                built.Add(replica);
                reports.Add(replica.BuildReport);
            }
            return built;
        }
        catch
        {
            Dispose(built);
            throw;
        }
    }

    private static void Dispose(List<ParallelLlama> replicas)
    {
        foreach (var r in replicas) r.Dispose();
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
