namespace OServe.Contracts;

/// <summary>
/// The built-in constraints against a cluster (do the nodes and devices they name exist?) and
/// against a plan (which constraints does it break?). Every planner and every candidate plan the
/// simulator ranks is held to the same rules through these two.
/// </summary>
public static class PlanConstraints
{
    /// <summary>Every problem of the constraints on this cluster, with file, line and field (<c>constraints[2].node</c>).</summary>
    public static IReadOnlyList<ContractError> Check(IReadOnlyList<ConstraintSpec> constraints, Cluster cluster, SourceMap? lines = null, string prefix = "constraints")
    {
        lines ??= SourceMap.None("constraints");
        var errors = new List<ContractError>();
        void Report(string field, string message) => errors.Add(lines.Error(field, message));
        var pinned = new Dictionary<string, string>();
        for (var i = 0; i < constraints.Count; i++)
        {
            var c = constraints[i];
            var at = $"{prefix}[{i}]";
            switch (c.Kind)
            {
                case ConstraintKind.MaxReplicas:
                    if (c.GpuType is { } type && cluster.GpuTypes.All(t => t.Name != type))
                        Report($"{at}.gpu_type", $"'{type}' is not a GPU type of cluster '{cluster.Name}' (known: {string.Join(", ", cluster.GpuTypes.Select(t => t.Name))})");
                    break;
                case ConstraintKind.KeepFree:
                    if (cluster.FindNode(c.Node ?? "") is not { } node)
                        Report($"{at}.node", $"no node '{c.Node}' in cluster '{cluster.Name}' (nodes: {string.Join(", ", cluster.Nodes.Select(n => n.Name))})");
                    else if (c.Gpus > node.Gpus)
                        Report($"{at}.gpus", $"cannot keep {c.Gpus} GPUs free on {node.Name}, which has {node.Gpus}");
                    break;
                case ConstraintKind.Pin:
                    CheckPin(c, at, cluster, pinned, Report);
                    break;
            }
        }
        return errors;
    }

    private static void CheckPin(ConstraintSpec c, string at, Cluster cluster, Dictionary<string, string> pinned, Action<string, string> report)
    {
        var devices = c.Devices ?? [];
        int tp = c.Tp ?? 1, pp = c.Pp ?? 1;
        if (!IsPowerOfTwo(tp) || !IsPowerOfTwo(pp))
            report($"{at}.tp", $"tp {tp} and pp {pp} must be powers of two: the planner builds no other replica shapes");
        if (devices.Count != tp * pp)
            report($"{at}.devices", $"{devices.Count} devices listed but tp {tp} x pp {pp} needs {tp * pp}");
        var nodes = new HashSet<string>();
        for (var d = 0; d < devices.Count; d++)
        {
            if (!DeviceId.TryParse(devices[d], out var id))
                report($"{at}.devices[{d}]", $"'{devices[d]}' is not a device id of the form node/index (e.g. node0/3)");
            else if (cluster.FindNode(id.Node) is not { } node)
                report($"{at}.devices[{d}]", $"GPU {id} does not exist: cluster '{cluster.Name}' has no node '{id.Node}'");
            else if (id.Index >= node.Gpus)
                report($"{at}.devices[{d}]", $"GPU {id} does not exist: node '{node.Name}' has {node.Gpus} GPUs (0..{node.Gpus - 1})");
            else
            {
                nodes.Add(id.Node);
                if (!pinned.TryAdd(id.ToString(), at))
                    report($"{at}.devices[{d}]", $"GPU {id} is pinned twice (also by {pinned[id.ToString()]})");
            }
        }
        if (nodes.Count > 1)
            report($"{at}.devices", $"a pinned replica must lie in one node, got {string.Join(", ", nodes)} (pipelines across nodes are placed by the planner)");
    }

    /// <summary>Throws a <see cref="ContractException"/> with every problem, if any.</summary>
    public static void EnsureValid(IReadOnlyList<ConstraintSpec> constraints, Cluster cluster, SourceMap? lines = null, string prefix = "constraints")
    {
        var errors = Check(constraints, cluster, lines, prefix);
        if (errors.Count > 0) throw new ContractException(errors);
    }

    /// <summary>What the plan breaks on <paramref name="cluster"/>: one message per constraint broken (empty when it keeps them all).</summary>
    public static IReadOnlyList<string> Violations(Plan plan, IReadOnlyList<ConstraintSpec> constraints, Cluster cluster)
    {
        var broken = new List<string>();
        static string NodeOf(string device) => DeviceId.TryParse(device, out var id) ? id.Node : "";
        foreach (var c in constraints)
        {
            switch (c.Kind)
            {
                case ConstraintKind.MaxReplicas:
                    int n = plan.Replicas.Count(r => r.Tp == c.Tp && r.Pp == (c.Pp ?? 1) && (c.GpuType is null || r.GpuType == c.GpuType));
                    if (n > c.Count) broken.Add($"{c.Describe()}: {n} replicas");
                    break;
                case ConstraintKind.KeepFree:
                    int used = plan.Replicas.Sum(r => r.Devices.Count(d => NodeOf(d) == c.Node));
                    if (cluster.FindNode(c.Node ?? "") is { } node && used > node.Gpus - Math.Min(node.Gpus, c.Gpus ?? node.Gpus))
                        broken.Add($"{c.Describe()}: {used} of its {node.Gpus} GPUs in use");
                    break;
                case ConstraintKind.Pin:
                    var devices = c.Devices ?? [];
                    if (!plan.Replicas.Any(r => r.Tp == (c.Tp ?? 1) && r.Pp == (c.Pp ?? 1) && r.Devices.SequenceEqual(devices)))
                        broken.Add($"{c.Describe()}: no such replica");
                    break;
                case ConstraintKind.MaxTp:
                    if (plan.Replicas.FirstOrDefault(r => r.Tp > c.Value) is { } wide) broken.Add($"{c.Describe()}: replica {wide.Id} has tp {wide.Tp}");
                    break;
                case ConstraintKind.MaxPp:
                    if (plan.Replicas.FirstOrDefault(r => r.Pp > c.Value) is { } deep) broken.Add($"{c.Describe()}: replica {deep.Id} has pp {deep.Pp}");
                    break;
                case ConstraintKind.NoCrossNodePp:
                    if (plan.Replicas.FirstOrDefault(r => r.Devices.Select(NodeOf).Distinct().Count() > 1) is { } across)
                        broken.Add($"{c.Describe()}: replica {across.Id} spans nodes");
                    break;
            }
        }
        return broken;
    }

    /// <summary>The id of the replica pinned by constraint <paramref name="index"/>: its <c>id</c>, else <c>pin{index}</c>.</summary>
    public static string PinId(IReadOnlyList<ConstraintSpec> constraints, int index) =>
        constraints[index].Id is { Length: > 0 } id ? id : $"pin{index}";

    /// <summary>The plan with each replica that sits on a pin's devices named as that pin's replica.</summary>
    public static Plan WithPinIds(Plan plan, IReadOnlyList<ConstraintSpec> constraints)
    {
        var rename = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < constraints.Count; i++)
            if (constraints[i].Kind == ConstraintKind.Pin
                && plan.Replicas.FirstOrDefault(r => r.Devices.SequenceEqual(constraints[i].Devices ?? [])) is { } pinned)
                rename[pinned.Id] = PinId(constraints, i);
        if (rename.Count == 0 || rename.All(kv => kv.Key == kv.Value)) return plan;
        // A replica that already has a pin's id elsewhere gives it up.
        var taken = rename.Values.ToHashSet(StringComparer.Ordinal);
        string Id(string id) => rename.TryGetValue(id, out var pin) ? pin : taken.Contains(id) ? id + "'" : id;
        return plan with
        {
            Replicas = plan.Replicas.Select(r => r with { Id = Id(r.Id) }).ToList(),
            Routing = plan.Routing.Select(e => e with { Weights = e.Weights.ToDictionary(kv => Id(kv.Key), kv => kv.Value) }).ToList(),
        };
    }

    /// <summary>GPUs of <paramref name="node"/> the constraints keep free (0 to all of them).</summary>
    public static int FreeToKeep(IReadOnlyList<ConstraintSpec> constraints, Node node) =>
        Math.Min(node.Gpus, constraints.Where(c => c.Kind == ConstraintKind.KeepFree && c.Node == node.Name).Select(c => c.Gpus ?? node.Gpus).DefaultIfEmpty(0).Max());

    private static bool IsPowerOfTwo(int v) => v > 0 && (v & (v - 1)) == 0;
}
