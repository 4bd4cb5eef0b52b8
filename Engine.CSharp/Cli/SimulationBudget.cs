using OServe.Contracts;

namespace OServe.Engine.Cli;

/// <summary>
/// Refuses a simulation this process could not hold in memory, before building any of it, and says
/// which part is too big. Two things grow without bound in a simulation: the requests (rate x
/// duration, or the trace's size) and the replicas' KV block tables (one entry per block: the
/// cluster's GPU memory over the model's KV bytes per token, in blocks of 16 tokens). Both are
/// estimated from above and compared with half the memory the process may use.
/// </summary>
public static class SimulationBudget
{
    // A request lives as a trace record, a simulator request, a scheduler sequence and a metrics row.
    private const long BytesPerRequest = 1024;
    // KvBlockManager: an int and a bool per block; a plan and its candidate (verification) may coexist.
    private const long BytesPerBlock = 5 * 2;
    private const long TraceBytesPerRequest = 24;
    private const int BlockSize = 16;

    public static void Check(Scenario scenario, string scenarioDir, Cluster cluster, ModelCard model, string? tracePath,
        double rateScale, double? durationS, long? availableBytes = null)
    {
        long available = availableBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        double requests = Requests(scenario.Workload, scenarioDir, tracePath, rateScale, durationS);
        double blocks = Blocks(cluster, model);
        double need = requests * BytesPerRequest + blocks * BytesPerBlock;
        if (need <= available / 2.0)
            return;
        // The process runs with invariant globalization: numbers format the same everywhere.
        throw new CliUsageException(
            $"simulate: this scenario would need about {Gib(need)} of memory, more than half of the {Gib(available)} this process may use: " +
            $"about {requests:G3} requests ({Gib(requests * BytesPerRequest)}) and KV block tables for {cluster.NumGpus} GPUs of " +
            $"{model.Name} ({blocks:G3} blocks, {Gib(blocks * BytesPerBlock)}); shorten it (--duration), lower the rate (--rate-scale), " +
            "or simulate a smaller cluster");
    }

    /// <summary>Requests the workload brings: the trace's, when its file is there (as the simulator picks it), else the synthetic stream's expected count at its peak rate.</summary>
    private static double Requests(Workload workload, string scenarioDir, string? tracePath, double rateScale, double? durationS)
    {
        var path = tracePath ?? (workload.Trace is { } trace ? Path.Combine(scenarioDir, trace.Path) : null);
        if (path is not null && File.Exists(path))
            return new FileInfo(path).Length / (double)TraceBytesPerRequest;
        if (workload.Synthetic is not { } synthetic)
            return 0;
        double seconds = Math.Min(synthetic.DurationS, durationS ?? double.PositiveInfinity);
        return synthetic.Components.Sum(c => c.RateRps * (1 + c.Amplitude)) * rateScale * seconds;
    }

    /// <summary>KV blocks if every GPU's whole memory held KV (each replica capped at int.MaxValue blocks, as the simulator caps it).</summary>
    private static double Blocks(Cluster cluster, ModelCard model)
    {
        double perToken = Math.Max(1, model.KvBytesPerToken);
        double blocks = 0;
        foreach (var node in cluster.Nodes)
        {
            var type = cluster.GpuTypes.FirstOrDefault(t => t.Name == node.GpuType);
            if (type is null)
                continue;
            double perGpu = Math.Min(int.MaxValue, type.MemoryGib * (1L << 30) / perToken / BlockSize);
            blocks += perGpu * node.Gpus;
        }
        return blocks;
    }

    private static string Gib(double bytes) => $"{bytes / (1L << 30):0.#} GiB";
}
