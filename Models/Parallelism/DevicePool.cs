using OServe.Contracts;
using TorchSharp;

namespace OServe.Models.Parallelism;

/// <summary>
/// The devices replicas can occupy, addressed by the plan's device ids (<c>node/index</c>).
/// Where TorchSharp sees CUDA devices the pool is those devices (node0/0 .. node0/n-1); otherwise
/// it is a configurable number of logical devices that keep their tensors on the host CPU, so
/// tensor and pipeline parallelism run (and are checked) with the same arithmetic as on GPUs.
/// </summary>
public sealed class DevicePool
{
    private readonly PoolDevice[] devices;
    private readonly Dictionary<string, PoolDevice> byId;

    private DevicePool(IEnumerable<PoolDevice> devices)
    {
        this.devices = devices.ToArray();
        byId = new Dictionary<string, PoolDevice>(StringComparer.Ordinal);
        foreach (var d in this.devices)
        {
            d.Pool = this;
            if (!byId.TryAdd(d.Id, d)) throw new ArgumentException($"device id '{d.Id}' appears twice in the pool");
        }
    }

    public IReadOnlyList<PoolDevice> Devices => devices;

    /// <summary>True when the devices are CUDA devices rather than logical CPU slots.</summary>
    public bool IsCuda => devices.Length > 0 && !devices[0].IsLogical;

    /// <summary>CUDA devices when available, else <paramref name="logicalDevices"/> logical devices on node <paramref name="node"/>.</summary>
    public static DevicePool Create(int logicalDevices = 4, string node = "node0") =>
        torch.cuda.is_available() && torch.cuda.device_count() > 0 ? Cuda(node) : Logical(logicalDevices, node);

    /// <summary>Every CUDA device TorchSharp sees, as <paramref name="node"/>/0 ...</summary>
    public static DevicePool Cuda(string node = "node0")
    {
        if (!torch.cuda.is_available()) throw new InvalidOperationException("CUDA is not available to TorchSharp in this process (TorchSharp-cpu, or no GPU/driver)");
        int n = torch.cuda.device_count();
        return new DevicePool(Enumerable.Range(0, n).Select(i => new PoolDevice($"{node}/{i}", i, new torch.Device(DeviceType.CUDA, i), isLogical: false)));
    }

    /// <summary>
    /// <paramref name="count"/> logical devices <paramref name="node"/>/0 .. on the host CPU; with
    /// <paramref name="oneCoreEach"/> each stands for one core (<see cref="PoolDevice.OwnsCore"/>).
    /// </summary>
    public static DevicePool Logical(int count, string node = "node0", bool oneCoreEach = false)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "a device pool needs at least one device");
        CheckNodeName(node);
        return new DevicePool(Enumerable.Range(0, count).Select(i => new PoolDevice($"{node}/{i}", i, torch.CPU, isLogical: true, oneCoreEach)));
    }

    /// <summary>
    /// <paramref name="count"/> pool devices <paramref name="node"/>/0 .. that all place their
    /// tensors on one torch device: logical CPU devices, or slots sharing one GPU (tensor-parallel
    /// shards on one GPU, to check them against the unsharded model where only one GPU exists).
    /// </summary>
    public static DevicePool Shared(int count, torch.Device device, string node = "node0")
    {
        if (device.type == DeviceType.CPU) return Logical(count, node);
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "a device pool needs at least one device");
        CheckNodeName(node);
        return new DevicePool(Enumerable.Range(0, count).Select(i => new PoolDevice($"{node}/{i}", i, device, isLogical: false)));
    }

    /// <summary>Logical devices for every GPU of <paramref name="cluster"/>, with the cluster's ids, to run a multi-node plan on one host.</summary>
    public static DevicePool Logical(Cluster cluster, bool oneCoreEach = false)
    {
        var ids = cluster.AllDevices().ToArray();
        if (ids.Length == 0) throw new ArgumentException($"cluster '{cluster.Name}' has no GPUs", nameof(cluster));
        return new DevicePool(ids.Select((id, i) => new PoolDevice(id.ToString(), i, torch.CPU, isLogical: true, oneCoreEach)));
    }

    public PoolDevice this[string id] =>
        byId.TryGetValue(id, out var d)
            ? d
            : throw new KeyNotFoundException($"device '{id}' is not in the pool (it has {Describe()})");

    public bool Contains(string id) => byId.ContainsKey(id);

    /// <summary>The devices of a plan's replica, stage-major as the plan lists them; checks that there are tp x pp distinct ones.</summary>
    public IReadOnlyList<PoolDevice> Resolve(ReplicaSpec replica)
    {
        string where = $"replica '{replica.Id}'";
        if (replica.Devices.Count != replica.Tp * replica.Pp)
            throw new ArgumentException($"{where}: tp={replica.Tp} x pp={replica.Pp} needs {replica.Tp * replica.Pp} devices, the plan lists {replica.Devices.Count}");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var resolved = new PoolDevice[replica.Devices.Count];
        for (int i = 0; i < resolved.Length; i++)
        {
            string id = replica.Devices[i];
            if (!seen.Add(id)) throw new ArgumentException($"{where}: device '{id}' is listed twice (devices[{i}])");
            if (!byId.TryGetValue(id, out var d))
                throw new ArgumentException($"{where}: devices[{i}] = '{id}' is not in the device pool (it has {Describe()})");
            resolved[i] = d;
        }
        return resolved;
    }

    /// <summary>Every holding of a slice overlapping <paramref name="wanted"/>, on any device.</summary>
    public IReadOnlyList<(PoolDevice Device, PoolDevice.Holding Holding)> FindHolders(WeightSlice wanted) =>
        devices.SelectMany(d => d.Overlapping(wanted).Select(h => (d, h))).ToArray();

    private string Describe() =>
        devices.Length <= 8 ? string.Join(", ", devices.Select(d => d.Id)) : $"{devices[0].Id} .. {devices[^1].Id}, {devices.Length} devices";

    private static void CheckNodeName(string node)
    {
        if (string.IsNullOrWhiteSpace(node) || node.Contains('/'))
            throw new ArgumentException($"node name '{node}' must be non-empty and contain no '/'", nameof(node));
    }

    public override string ToString() =>
        $"{(IsCuda ? "CUDA" : devices.All(d => d.OwnsCore) ? "logical CPU (one core each)" : "logical CPU")} device pool: {Describe()}";
}
