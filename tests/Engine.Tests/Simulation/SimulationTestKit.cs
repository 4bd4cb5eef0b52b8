using OServe.Contracts;
using OServe.Engine.Scheduling;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;

namespace OServe.Engine.Tests.Simulation;

/// <summary>Small builders for simulator tests: in-memory clusters, cards, plans and workloads.</summary>
internal static class SimulationTestKit
{
    public static Cluster H100Cluster(int numNodes = 1) => new()
    {
        Name = "test-h100",
        GpuTypes = [new GpuType { Name = "H100-80GB", MemoryGib = 80, Tflops = 989, HbmGbps = 3350 }],
        Nodes = Enumerable.Range(0, numNodes).Select(i => new Node { Name = $"node{i}", GpuType = "H100-80GB", Gpus = 8, IntraLinkGbps = 400 }).ToList(),
        InterNodeLinkGbps = 200,
        StorageReadGbps = 2,
    };

    public static ModelCard Llama13B => new()
    {
        Name = "Llama-2-13B", Layers = 40, Hidden = 5120, Intermediate = 13824, Heads = 40, KvHeads = 40, Vocab = 32000, MaxContext = 4096,
    };

    public static ReplicaSpec Replica(string id, int tp, params string[] devices) =>
        new() { Id = id, GpuType = "H100-80GB", Devices = devices, Tp = tp };

    public static IEnumerable<string> Devices(string node, int from, int count) =>
        Enumerable.Range(from, count).Select(i => $"{node}/{i}");

    /// <summary>A plan whose types are routed by <paramref name="routing"/> (type name -> replica id -> weight).</summary>
    public static Plan Plan(IReadOnlyList<ReplicaSpec> replicas, IReadOnlyList<RequestTypeSpec> types,
        IReadOnlyDictionary<string, Dictionary<string, double>> routing, double startS = 0, SwitchPlan? switchPlan = null, int version = 1) => new()
    {
        Version = version,
        Model = "Llama-2-13B",
        Cluster = "test-h100",
        Window = new PlanWindow { StartS = startS, LengthS = 60 },
        RequestTypes = types,
        Replicas = replicas,
        Routing = routing.Select(kv => new RoutingEntry { Type = kv.Key, Weights = kv.Value }).ToList(),
        Switch = switchPlan,
    };

    public static RequestTypeSpec Type(string name, double input, double output) => new() { Name = name, InputTokens = input, OutputTokens = output };

    /// <summary>Every replica steps in exactly <paramref name="seconds"/>.</summary>
    public static Func<ReplicaSpec, ReplicaModel> Fixed(double seconds, int budget = 8192, int blocks = 4096) =>
        _ => new ReplicaModel(new SchedulerConfig { NumKvBlocks = blocks, BlockSize = 16, MaxNumBatchedTokens = budget, MaxNumSeqs = 256, MaxModelLen = 4096 },
            new FixedIterationTime(seconds));

    /// <summary>Poisson arrivals at <paramref name="rate"/>; lengths drawn around the given means (seeded).</summary>
    public static SimRequest[] Poisson(int seed, double rate, double durationS, int meanInput, int meanOutput, int numTypes = 1)
    {
        var rng = new Random(seed);
        var list = new List<SimRequest>();
        double t = 0;
        while (true)
        {
            t += -Math.Log(1 - rng.NextDouble()) / rate;
            if (t >= durationS) break;
            int type = rng.Next(numTypes);
            int input = Math.Max(1, (int)(meanInput * (type + 1) * (0.5 + rng.NextDouble())));
            int output = Math.Max(1, (int)(meanOutput / (type + 1) * (0.5 + rng.NextDouble())));
            list.Add(new SimRequest(list.Count, t, Math.Min(input, 3000), Math.Min(output, 1000), type));
        }
        return list.ToArray();
    }

    public static OServe.Engine.Simulation.Simulation Run(SimulationSetup setup)
    {
        var sim = new OServe.Engine.Simulation.Simulation(setup);
        sim.Run();
        return sim;
    }

    public static CostModelReplicas CostModel(Cluster cluster, ModelCard card) =>
        new(cluster, card, CostCoefficientsModule.defaults);
}
