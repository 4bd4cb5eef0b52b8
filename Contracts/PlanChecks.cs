namespace OServe.Contracts;

/// <summary>
/// Consistency rules of a plan: alone (ids, device lists, routing references) and against the
/// cluster and model it names (devices exist, GPU types match, TP divides the heads, a stage stays
/// in one node, weights fit in memory). Every rule reports through one sink with a field path.
/// </summary>
public static class PlanChecks
{
    /// <summary>Checks a plan against its cluster and model; returns every problem, empty when valid.</summary>
    public static IReadOnlyList<ContractError> Validate(Plan plan, Cluster cluster, ModelCard model, SourceMap? lines = null)
    {
        lines ??= SourceMap.None("plan");
        var errors = new List<ContractError>();
        void Report(string field, string message) => errors.Add(lines.Error(field, message));
        CheckInternal(plan, "", Report);
        CheckAgainst(plan, cluster, model, "", Report);
        return errors;
    }

    /// <summary>Throws a <see cref="ContractException"/> listing every problem, if any.</summary>
    public static void EnsureValid(Plan plan, Cluster cluster, ModelCard model, SourceMap? lines = null)
    {
        var errors = Validate(plan, cluster, model, lines);
        if (errors.Count > 0) throw new ContractException(errors);
    }

    public static void CheckInternal(Plan plan, string prefix, Action<string, string> report)
    {
        string F(string field) => prefix.Length == 0 ? field : $"{prefix}.{field}";
        var ids = new HashSet<string>();
        var owner = new Dictionary<string, string>();
        for (var i = 0; i < plan.Replicas.Count; i++)
        {
            var r = plan.Replicas[i];
            var at = F($"replicas[{i}]");
            if (r.Id.Length > 0 && !ids.Add(r.Id)) report($"{at}.id", $"replica id '{r.Id}' is used twice");
            if (r.Devices.Count != r.Tp * r.Pp)
                report($"{at}.devices", $"{r.Devices.Count} devices listed but tp {r.Tp} x pp {r.Pp} needs {r.Tp * r.Pp}");
            for (var d = 0; d < r.Devices.Count; d++)
            {
                var device = r.Devices[d];
                if (!DeviceId.TryParse(device, out _))
                    report($"{at}.devices[{d}]", $"'{device}' is not a device id of the form node/index (e.g. node0/3)");
                else if (owner.TryGetValue(device, out var other))
                    report($"{at}.devices[{d}]", $"GPU {device} is used twice (also by replica '{other}')");
                else owner[device] = r.Id;
            }
        }
        var types = new HashSet<string>();
        for (var i = 0; i < plan.RequestTypes.Count; i++)
            if (!types.Add(plan.RequestTypes[i].Name))
                report(F($"request_types[{i}].name"), $"request type '{plan.RequestTypes[i].Name}' is defined twice");
        var routed = new HashSet<string>();
        for (var i = 0; i < plan.Routing.Count; i++)
        {
            var e = plan.Routing[i];
            var at = F($"routing[{i}]");
            if (e.Type.Length > 0 && !types.Contains(e.Type))
                report($"{at}.type", $"'{e.Type}' is not one of the plan's request types ({string.Join(", ", types)})");
            if (!routed.Add(e.Type)) report($"{at}.type", $"type '{e.Type}' is routed twice");
            foreach (var (replica, weight) in e.Weights)
            {
                if (!ids.Contains(replica))
                    report($"{at}.weights.{replica}", $"'{replica}' is not a replica of this plan");
                if (weight < 0)
                    report($"{at}.weights.{replica}", $"{weight.ToString(System.Globalization.CultureInfo.InvariantCulture)} is negative");
            }
            if (e.Weights.Count > 0 && e.Weights.Values.All(w => w == 0))
                report($"{at}.weights", "weights sum to 0: the type would be served nowhere");
        }
        // A type the plan declares but routes nowhere would have its requests dropped (or sent to a
        // replica the plan never sized for them) the moment one arrives, even if its forecast was 0.
        if (plan.Replicas.Count > 0)
            for (var i = 0; i < plan.RequestTypes.Count; i++)
            {
                var name = plan.RequestTypes[i].Name;
                if (!plan.Routing.Any(e => e.Type == name && e.Weights.Count > 0))
                    report(F($"request_types[{i}]"), $"type '{name}' has no routing entry with a replica: its requests would be served nowhere");
            }
        CheckStages(plan.Predicted, F("predicted"), report);
    }

    /// <summary>A solve is "Optimal" only when every stage proved its optimum; a stage that did not finish says what stopped it.</summary>
    private static void CheckStages(PredictedFigures? predicted, string at, Action<string, string> report)
    {
        if (predicted?.Stages is not { } stages) return;
        for (var i = 0; i < stages.Count; i++)
        {
            var st = stages[i];
            if (st.Status == SolveStageStatus.Optimal && !string.IsNullOrEmpty(st.StoppedBy))
                report($"{at}.stages[{i}].stopped_by", $"stage '{st.Name}' is optimal, so nothing stopped it (got '{st.StoppedBy}')");
            if (st.Status is SolveStageStatus.Feasible or SolveStageStatus.NoSolution && string.IsNullOrEmpty(st.StoppedBy))
                report($"{at}.stages[{i}].stopped_by", $"stage '{st.Name}' did not finish ({EnumText(st.Status)}): say what stopped it (work budget or wall-clock cap)");
        }
        var unfinished = stages.FirstOrDefault(st => st.Status != SolveStageStatus.Optimal);
        if (string.Equals(predicted.SolveStatus, "optimal", StringComparison.OrdinalIgnoreCase) && unfinished is not null)
            report($"{at}.solve_status", $"says Optimal, but stage '{unfinished.Name}' is {EnumText(unfinished.Status)}");
    }

    private static string EnumText(SolveStageStatus s) => s switch
    {
        SolveStageStatus.NoSolution => "no_solution",
        SolveStageStatus.ModelInvalid => "model_invalid",
        _ => s.ToString().ToLowerInvariant(),
    };

    public static void CheckAgainst(Plan plan, Cluster cluster, ModelCard model, string prefix, Action<string, string> report)
    {
        string F(string field) => prefix.Length == 0 ? field : $"{prefix}.{field}";
        if (plan.Model != model.Name) report(F("model"), $"plan is for model '{plan.Model}' but the model card is '{model.Name}'");
        if (plan.Cluster != cluster.Name) report(F("cluster"), $"plan is for cluster '{plan.Cluster}' but the cluster is '{cluster.Name}'");
        for (var i = 0; i < plan.RequestTypes.Count; i++)
        {
            var t = plan.RequestTypes[i];
            if (t.InputTokens + t.OutputTokens > model.MaxContext)
                report(F($"request_types[{i}]"), $"type '{t.Name}' has {t.InputTokens:0.#} + {t.OutputTokens:0.#} tokens, more than {model.Name}'s context of {model.MaxContext}: no replica can hold such a request");
        }
        for (var i = 0; i < plan.Replicas.Count; i++)
        {
            var r = plan.Replicas[i];
            var at = F($"replicas[{i}]");
            var type = cluster.GpuTypes.FirstOrDefault(t => t.Name == r.GpuType);
            if (type is null)
                report($"{at}.gpu_type", $"'{r.GpuType}' is not a GPU type of cluster '{cluster.Name}'");
            if (model.Heads % r.Tp != 0)
                report($"{at}.tp", $"tp {r.Tp} does not divide the {model.Heads} attention heads of {model.Name}");
            else if (model.KvHeads % r.Tp != 0 && r.Tp % model.KvHeads != 0)
                report($"{at}.tp", $"tp {r.Tp} neither divides nor is a multiple of the {model.KvHeads} KV heads of {model.Name}");
            if (r.Pp > model.Layers)
                report($"{at}.pp", $"pp {r.Pp} exceeds the {model.Layers} layers of {model.Name}");
            for (var d = 0; d < r.Devices.Count; d++)
            {
                if (!DeviceId.TryParse(r.Devices[d], out var id)) continue;
                var node = cluster.FindNode(id.Node);
                if (node is null)
                    report($"{at}.devices[{d}]", $"GPU {id} does not exist: cluster '{cluster.Name}' has no node '{id.Node}'");
                else if (id.Index >= node.Gpus)
                    report($"{at}.devices[{d}]", $"GPU {id} does not exist: node '{node.Name}' has {node.Gpus} GPUs (0..{node.Gpus - 1})");
                else if (type is not null && node.GpuType != type.Name)
                    report($"{at}.devices[{d}]", $"GPU {id} is a {node.GpuType}, not a {type.Name}");
            }
            if (r.Devices.Count == r.Tp * r.Pp)
                for (var s = 0; s < r.Pp; s++)
                {
                    var nodes = r.Devices.Skip(s * r.Tp).Take(r.Tp)
                        .Select(d => DeviceId.TryParse(d, out var id) ? id.Node : "").Distinct().ToList();
                    if (nodes.Count > 1)
                        report($"{at}.devices", $"pipeline stage {s} spans nodes {string.Join(", ", nodes)}: a tensor-parallel group must stay in one node");
                }
            if (type is not null && r.Tp > 0 && r.Pp > 0)
            {
                var perGpu = (double)model.WeightBytes / (r.Tp * r.Pp);
                var memory = type.MemoryGib * (1L << 30);
                if (perGpu >= memory)
                    report($"{at}.tp", $"{model.Name} needs {perGpu / (1L << 30):F1} GiB of weights per GPU at tp {r.Tp} x pp {r.Pp}, more than the {type.MemoryGib} GiB of a {type.Name}");
            }
        }
    }
}
