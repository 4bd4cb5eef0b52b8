using YamlDotNet.Serialization;

namespace OServe.Contracts;

/// <summary>An accelerator model. Figures are per GPU, from the vendor's public specification.</summary>
public sealed record GpuType
{
    public required string Name { get; init; }
    public required double MemoryGib { get; init; }
    /// <summary>Dense BF16 tensor throughput, TFLOP/s (no sparsity).</summary>
    public required double Tflops { get; init; }
    /// <summary>HBM bandwidth, GB/s.</summary>
    public required double HbmGbps { get; init; }
}

/// <summary>A machine holding <see cref="Gpus"/> GPUs of one type joined by an intra-node link.</summary>
public sealed record Node
{
    public required string Name { get; init; }
    public required string GpuType { get; init; }
    public required int Gpus { get; init; }
    /// <summary>Per-GPU intra-node link bandwidth (NVLink/xGMI or PCIe), GB/s.</summary>
    public required double IntraLinkGbps { get; init; }
    /// <summary>Small-message all-reduce latency among this node's GPUs, microseconds (nccl-tests); null: the planner's default (20 us).</summary>
    public double? AllreduceLatencyUs { get; init; }
    /// <summary>Large-message all-reduce bus bandwidth among this node's GPUs, GB/s (nccl-tests busbw); null: 470 capped at the link.</summary>
    public double? AllreduceBusGbps { get; init; }
}

public sealed record Cluster
{
    public required string Name { get; init; }
    public string? Description { get; init; }
    public required IReadOnlyList<GpuType> GpuTypes { get; init; }
    public required IReadOnlyList<Node> Nodes { get; init; }
    /// <summary>Per-GPU inter-node link bandwidth (InfiniBand/RoCE), GB/s.</summary>
    public required double InterNodeLinkGbps { get; init; }
    /// <summary>Latency of one send between nodes, microseconds; null: the planner's default (25 us).</summary>
    public double? InterNodeLatencyUs { get; init; }
    /// <summary>Read bandwidth from weight storage per node (cold reload), GB/s.</summary>
    public double StorageReadGbps { get; init; } = 2.0;

    public GpuType GpuTypeOf(Node node) => GpuTypes.First(t => t.Name == node.GpuType);

    public Node? FindNode(string name) => Nodes.FirstOrDefault(n => n.Name == name);

    /// <summary>GPUs in all; ContractLimits keeps a cluster read from a file under <see cref="Yaml.ContractLimits.MaxGpus"/>.</summary>
    [YamlIgnore]
    public int NumGpus => checked((int)Nodes.Sum(n => (long)n.Gpus));

    /// <summary>Every GPU in node order, then index order.</summary>
    public IEnumerable<DeviceId> AllDevices() =>
        Nodes.SelectMany(n => Enumerable.Range(0, n.Gpus).Select(i => new DeviceId(n.Name, i)));
}

/// <summary>A GPU address, written <c>node/index</c> (e.g. <c>node0/3</c>) in plans.</summary>
public readonly record struct DeviceId(string Node, int Index)
{
    public override string ToString() => $"{Node}/{Index}";

    public static bool TryParse(string text, out DeviceId id)
    {
        id = default;
        var slash = text.LastIndexOf('/');
        if (slash <= 0 || slash == text.Length - 1) return false;
        if (!int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out var index)) return false;
        id = new DeviceId(text[..slash], index);
        return true;
    }

    public static DeviceId Parse(string text) =>
        TryParse(text, out var id) ? id : throw new FormatException($"'{text}' is not a device id of the form node/index");
}
