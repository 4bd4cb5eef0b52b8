using OServe.Contracts;

namespace OServe.Engine.Simulation;

/// <summary>
/// Transfer times of a switch on a cluster: device-to-device copies over NVLink within a node or
/// the inter-node link across nodes, reads from storage per node, at the planner's link efficiency.
/// </summary>
public sealed class SwitchCosts(Cluster cluster, long kvBytesPerToken, double linkEfficiency = 0.7)
{
    private readonly Dictionary<string, Node> _nodes = cluster.Nodes.ToDictionary(n => n.Name);

    public Cluster Cluster { get; } = cluster;
    public long KvBytesPerToken { get; } = kvBytesPerToken;

    public double LinkBytesPerSec(string fromDevice, string toDevice)
    {
        var a = DeviceId.Parse(fromDevice);
        var b = DeviceId.Parse(toDevice);
        double gbps = a.Node == b.Node ? NodeOf(a).IntraLinkGbps : Cluster.InterNodeLinkGbps;
        return gbps * 1e9 * linkEfficiency;
    }

    public double TransferSeconds(string fromDevice, string toDevice, long bytes) =>
        bytes <= 0 || fromDevice == toDevice ? 0 : bytes / LinkBytesPerSec(fromDevice, toDevice);

    public double StorageSeconds(long bytes) => bytes <= 0 ? 0 : bytes / (Cluster.StorageReadGbps * 1e9);

    public string NodeName(string device) => DeviceId.Parse(device).Node;

    private Node NodeOf(DeviceId id) => _nodes.TryGetValue(id.Node, out var n)
        ? n : throw new ArgumentException($"device '{id}' names no node of cluster '{Cluster.Name}'");
}
