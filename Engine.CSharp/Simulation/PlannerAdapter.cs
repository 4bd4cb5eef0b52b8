using Microsoft.FSharp.Core;
using OServe.Contracts;
using OServe.Planner.CostModel;
using OServe.Planner.Solver;
using OServe.Planner.Switching;

namespace OServe.Engine.Simulation;

/// <summary>
/// The boundary between the Contracts records (what YAML carries) and the planner's own types:
/// cluster, model, replica configs, and back from a solver deployment to a <see cref="Plan"/>.
/// Kept here because the planner deliberately does not depend on how contracts are spelled.
/// </summary>
public static class PlannerAdapter
{
    private const double GiB = 1024.0 * 1024 * 1024;

    public static GpuSpec Gpu(GpuType t) =>
        new(t.Name, (long)(t.MemoryGib * GiB), t.Tflops * 1e12, t.HbmGbps * 1e9);

    public static ClusterSpec Cluster(Cluster cluster) =>
        new(cluster.Nodes.Select(n => new NodeSpec(n.Name, Gpu(cluster.GpuTypeOf(n)), n.Gpus, n.IntraLinkGbps * 1e9)).ToArray(),
            cluster.InterNodeLinkGbps * 1e9);

    /// <summary>Embedding (and OPT's learned positions) before the layers; final norm and LM head after.</summary>
    public static ModelSpec Model(ModelCard card)
    {
        long embed = (long)card.Vocab * card.Hidden;
        bool opt = card.Architecture == ModelArchitecture.Opt;
        long input = embed + (opt ? (long)(card.MaxContext + 2) * card.Hidden : 0);
        long output = (card.TiedEmbeddings ? 0 : embed) + (opt ? 2L * card.Hidden : card.Hidden);
        return new ModelSpec(card.Name, card.Layers, card.Hidden, card.Heads, card.KvHeads, card.HeadDim,
            card.DtypeBytes, card.MaxContext, card.ParamsPerLayer, input, output);
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
        return new ReplicaConfig(Gpu(cluster.GpuTypeOf(node)), replica.Tp, replica.Pp, crossNode);
    }

    public static Links Links(ReplicaSpec replica, Cluster cluster)
    {
        var node = cluster.Nodes[NodeIndex(cluster, replica.Devices[0])];
        return new Links(node.IntraLinkGbps * 1e9, cluster.InterNodeLinkGbps * 1e9);
    }

    public static PlacedReplica[] Placed(Plan plan, Cluster cluster) =>
        plan.Replicas.Select(r => new PlacedReplica(r.Id, Config(r, cluster),
            r.Devices.Select(d => Tuple.Create(NodeIndex(cluster, d), DeviceId.Parse(d).Index)).ToArray())).ToArray();

    public static string DeviceName(Cluster cluster, Tuple<int, int> device) => $"{cluster.Nodes[device.Item1].Name}/{device.Item2}";

    /// <summary>A plan from a placed deployment: routing weights are the routed rates (requests/s).</summary>
    public static Plan ToPlan(Cluster cluster, ModelCard model, string planner, double startS, double lengthS,
        IReadOnlyList<TypeDemand> types, Deployment deployment, PredictedFigures? predicted, SwitchPlan? switchPlan, int version)
    {
        var replicas = deployment.Replicas.Select(r => new ReplicaSpec
        {
            Id = r.Id,
            GpuType = r.Config.Gpu.Name,
            Devices = r.Devices.Select(d => DeviceName(cluster, d)).ToList(),
            Tp = r.Config.Tp,
            Pp = r.Config.Pp,
        }).ToList();
        var routing = new List<RoutingEntry>();
        for (int j = 0; j < types.Count; j++)
        {
            var weights = new Dictionary<string, double>();
            for (int i = 0; i < deployment.Replicas.Length; i++)
                if (deployment.RatePerReplica[i][j] > 1e-9)
                    weights[deployment.Replicas[i].Id] = Math.Round(deployment.RatePerReplica[i][j], 6);
            if (weights.Count > 0) routing.Add(new RoutingEntry { Type = types[j].Name, Weights = weights });
        }
        return new Plan
        {
            Version = version,
            Model = model.Name,
            Cluster = cluster.Name,
            Planner = planner,
            Window = new PlanWindow { StartS = startS, LengthS = lengthS },
            RequestTypes = types.Select(t => new RequestTypeSpec { Name = t.Name, InputTokens = t.InputTokens, OutputTokens = t.OutputTokens, RateRps = t.Rate }).ToList(),
            Replicas = replicas,
            Routing = routing,
            Predicted = predicted,
            Switch = switchPlan,
        };
    }

    public static SwitchPlan ToSwitchPlan(Cluster cluster, SwitchSchedule schedule, int fromVersion) => new()
    {
        FromVersion = fromVersion,
        Steps = schedule.Steps.Select(s => new SwitchStep
        {
            Kind = (SwitchStepKind)(int)s.Kind,
            Replica = s.Replica,
            Device = OptionModule.IsSome(s.Device) ? DeviceName(cluster, s.Device!.Value) : null,
            Source = OptionModule.IsSome(s.Source) ? DeviceName(cluster, s.Source!.Value) : (s.Kind == StepKind.LoadShard ? "storage" : null),
            Bytes = s.Bytes,
            EstSeconds = s.EstSeconds,
        }).ToList(),
        TotalBytes = schedule.TotalBytes,
        EstSeconds = schedule.EstSeconds,
    };

    /// <summary>
    /// <paramref name="to"/> with the planner's switch steps from <paramref name="from"/>: shards from
    /// the cheapest current holder (hot) or from storage (<paramref name="reload"/>), drains and KV moves.
    /// </summary>
    public static Plan WithSwitch(Cluster cluster, ModelCard card, CostCoefficients k, Plan from, Plan to, bool reload, double rho = 0.85, double longShare = 0.5)
    {
        var schedule = SwitchPlanner.plan(k, Model(card), Cluster(cluster), cluster.StorageReadGbps * 1e9, reload, rho, longShare,
            Placed(from, cluster), Placed(to, cluster));
        return to with { Switch = ToSwitchPlan(cluster, schedule, from.Version) };
    }

    /// <summary>Unwraps an F# Result, turning its errors into one exception with every message.</summary>
    public static T Unwrap<T>(FSharpResult<T, Microsoft.FSharp.Collections.FSharpList<string>> result, string what) =>
        result.IsOk ? result.ResultValue : throw new PlanningException($"{what}: {string.Join("; ", result.ErrorValue)}");
}

/// <summary>The planner could not produce a plan (no feasible deployment, solver failure).</summary>
public sealed class PlanningException(string message) : Exception(message);
