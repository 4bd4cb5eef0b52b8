using Microsoft.FSharp.Core;
using OServe.Contracts;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using OServe.Planner.Switching;

namespace OServe.Engine.Simulation;

/// <summary>
/// What the simulator needs from the planner beyond its public entry points: the cost-model view
/// of one replica of a plan, and switch steps between two given plans (for plan files written by
/// hand). Contracts are mapped with the planner's own <see cref="ContractMapping"/>.
/// </summary>
public static class PlannerAdapter
{
    public static ModelSpec Model(ModelCard card) => ContractMapping.model(card);

    public static ClusterSpec Cluster(Cluster cluster)
    {
        var spec = ContractMapping.cluster(cluster);
        return spec.IsOk ? spec.ResultValue : throw new ContractException(spec.ErrorValue.Select(e => new ContractError(cluster.Name, 0, e.Field, e.Message)).ToList());
    }

    public static int NodeIndex(Cluster cluster, string device)
    {
        var id = DeviceId.Parse(device);
        for (int i = 0; i < cluster.Nodes.Count; i++)
            if (cluster.Nodes[i].Name == id.Node) return i;
        throw new ArgumentException($"device '{device}' names no node of cluster '{cluster.Name}'");
    }

    public static ReplicaConfig Config(ReplicaSpec replica, Cluster cluster)
    {
        var node = cluster.Nodes[NodeIndex(cluster, replica.Devices[0])];
        bool crossNode = replica.Devices.Select(d => DeviceId.Parse(d).Node).Distinct().Count() > 1;
        return new ReplicaConfig(ContractMapping.gpu(cluster.GpuTypeOf(node)), replica.Tp, replica.Pp, crossNode);
    }

    public static Links Links(ReplicaSpec replica, Cluster cluster)
    {
        var spec = Cluster(cluster);
        return LinksModule.ofNode(spec, spec.Nodes[NodeIndex(cluster, replica.Devices[0])]);
    }

    /// <summary>
    /// <paramref name="to"/> with the planner's switch steps from <paramref name="from"/>: shards from
    /// the cheapest current holder (hot) or from storage (<paramref name="reload"/>), drains and KV moves.
    /// </summary>
    public static Plan WithSwitch(Cluster cluster, ModelCard card, CostCoefficients k, Plan from, Plan to, bool reload, double rho = 0.85, double longShare = 0.5)
    {
        var spec = Cluster(cluster);
        var schedule = SwitchPlanner.plan(k, Model(card), spec, cluster.StorageReadGbps * 1e9, reload, rho, longShare, Placed(spec, from), Placed(spec, to));
        return to with { Switch = ToSwitchPlan(spec, schedule, from.Version) };
    }

    private static OServe.Planner.Solver.PlacedReplica[] Placed(ClusterSpec spec, Plan plan)
    {
        var placed = ContractMapping.placed(spec, plan);
        return placed.IsOk ? placed.ResultValue : throw new ArgumentException(string.Join("; ", placed.ErrorValue));
    }

    private static SwitchPlan ToSwitchPlan(ClusterSpec spec, SwitchSchedule schedule, int fromVersion) => new()
    {
        FromVersion = fromVersion,
        Steps = schedule.Steps.Select(s => new SwitchStep
        {
            Kind = (SwitchStepKind)(int)s.Kind,
            Replica = s.Replica,
            Device = OptionModule.IsSome(s.Device) ? ContractMapping.deviceText(spec, s.Device!.Value.Item1, s.Device.Value.Item2) : null,
            Source = OptionModule.IsSome(s.Source) ? ContractMapping.deviceText(spec, s.Source!.Value.Item1, s.Source.Value.Item2)
                : s.Kind == StepKind.LoadShard ? "storage" : null,
            Bytes = s.Bytes,
            EstSeconds = s.EstSeconds,
        }).ToList(),
        TotalBytes = schedule.TotalBytes,
        EstSeconds = schedule.EstSeconds,
    };
}
