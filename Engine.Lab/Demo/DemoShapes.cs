using OServe.Contracts;

namespace OServe.Engine.Demo;

/// <summary>
/// The two deployments the demo's planner chooses between on two core-owning logical devices, as
/// plans the runtime can start: one tp2 replica over both devices, or two tp1 replicas, one per device.
/// </summary>
public static class DemoShapes
{
    public const string Tp2 = "1 x tp2";
    public const string TwoTp1 = "2 x tp1";
    /// <summary>One tp1 replica on the first device alone (what calibration fits the coefficients on).</summary>
    public const string OneTp1 = "1 x tp1";

    /// <summary>The tensor-parallel degree of a shape's replicas.</summary>
    public static int TpOf(string shape) => shape switch
    {
        Tp2 => 2,
        TwoTp1 or OneTp1 => 1,
        _ => throw new ArgumentException($"unknown demo shape '{shape}' (known: {Tp2}, {TwoTp1})", nameof(shape)),
    };

    /// <summary>A plan of <paramref name="shape"/> on the first two devices of <paramref name="cluster"/>'s node, every type routed to every replica.</summary>
    public static Plan PlanOf(string shape, Cluster cluster, string model, IReadOnlyList<RequestTypeSpec> types, int version = 1)
    {
        var node = cluster.Nodes[0];
        if (node.Gpus < (shape == OneTp1 ? 1 : 2)) throw new ArgumentException($"the demo's shape {shape} needs more devices; cluster '{cluster.Name}' node '{node.Name}' has {node.Gpus}");
        string d0 = $"{node.Name}/0", d1 = $"{node.Name}/1";
        ReplicaSpec[] replicas = shape switch
        {
            OneTp1 => [new ReplicaSpec { Id = "r0", GpuType = node.GpuType, Devices = [d0] }],
            Tp2 => [new ReplicaSpec { Id = "r0", GpuType = node.GpuType, Devices = [d0, d1], Tp = 2 }],
            TwoTp1 => [new ReplicaSpec { Id = "r0", GpuType = node.GpuType, Devices = [d0] }, new ReplicaSpec { Id = "r1", GpuType = node.GpuType, Devices = [d1] }],
            _ => throw new ArgumentException($"unknown demo shape '{shape}' (known: {Tp2}, {TwoTp1})", nameof(shape)),
        };
        return new Plan
        {
            Version = version, Model = model, Cluster = cluster.Name, Planner = "static " + shape,
            RequestTypes = types,
            Replicas = replicas,
            Routing = types.Select(t => new RoutingEntry { Type = t.Name, Weights = replicas.ToDictionary(r => r.Id, _ => 1.0) }).ToArray(),
        };
    }
}
