namespace OServe.Contracts.Yaml;

/// <summary>Field-by-field readers for every contract; each checks what one file can check alone.</summary>
internal static class ContractReaders
{
    public static GpuType GpuType(MapReader m) => new()
    {
        Name = m.String("name"),
        MemoryGib = m.Double("memory_gib", max: ContractLimits.MaxMemoryGib),
        Tflops = m.Double("tflops", max: ContractLimits.MaxTflops),
        HbmGbps = m.Double("hbm_gbps", max: ContractLimits.MaxBandwidthGbps),
    };

    public static Node Node(MapReader m) => new()
    {
        Name = m.String("name"),
        GpuType = m.String("gpu_type"),
        Gpus = m.Int("gpus", min: 1, max: ContractLimits.MaxGpusPerNode),
        IntraLinkGbps = m.Double("intra_link_gbps", max: ContractLimits.MaxBandwidthGbps),
        AllreduceLatencyUs = m.OptDouble("allreduce_latency_us", positive: true, max: ContractLimits.MaxSeconds * 1e6),
        AllreduceBusGbps = m.OptDouble("allreduce_bus_gbps", positive: true, max: ContractLimits.MaxBandwidthGbps),
    };

    public static Cluster Cluster(MapReader m)
    {
        var cluster = new Cluster
        {
            Name = m.String("name"),
            Description = m.OptString("description"),
            GpuTypes = m.List("gpu_types", GpuType, maxCount: ContractLimits.MaxGpuTypes),
            Nodes = m.List("nodes", Node, maxCount: ContractLimits.MaxNodes),
            InterNodeLinkGbps = m.Double("inter_node_link_gbps", max: ContractLimits.MaxBandwidthGbps),
            InterNodeLatencyUs = m.OptDouble("inter_node_latency_us", positive: true, max: ContractLimits.MaxSeconds * 1e6),
            StorageReadGbps = m.OptDouble("storage_read_gbps", positive: true, max: ContractLimits.MaxBandwidthGbps) ?? 2.0,
        };
        // Each node is bounded, so this sum cannot overflow; the cluster as a whole is bounded too.
        long numGpus = cluster.Nodes.Sum(n => (long)n.Gpus);
        if (numGpus > ContractLimits.MaxGpus)
            m.Error("nodes", $"{numGpus} GPUs in all is above the maximum {ContractLimits.MaxGpus}");
        Unique(m, "gpu_types", cluster.GpuTypes.Select(t => t.Name), "GPU type");
        Unique(m, "nodes", cluster.Nodes.Select(n => n.Name), "node");
        var types = cluster.GpuTypes.Select(t => t.Name).ToHashSet();
        for (var i = 0; i < cluster.Nodes.Count; i++)
        {
            var node = cluster.Nodes[i];
            if (node.Name.Contains('/'))
                m.Context.Error(null, $"nodes[{i}].name", $"'{node.Name}' must not contain '/' (device ids are node/index)");
            if (node.GpuType.Length > 0 && !types.Contains(node.GpuType))
                m.Context.Error(null, $"nodes[{i}].gpu_type", $"'{node.GpuType}' is not a GPU type of this cluster (known: {string.Join(", ", types)})");
        }
        if (cluster.Nodes.Count == 0 && m.Context.Errors.Count == 0)
            m.Error("nodes", "a cluster needs at least one node");
        return cluster;
    }

    public static ModelCard ModelCard(MapReader m)
    {
        var card = new ModelCard
        {
            Name = m.String("name"),
            Architecture = m.OptEnum("architecture", ModelArchitecture.Llama),
            Layers = m.Int("layers", min: 1, max: ContractLimits.MaxLayers),
            Hidden = m.Int("hidden", min: 1, max: ContractLimits.MaxHidden),
            Intermediate = m.Int("intermediate", min: 1, max: ContractLimits.MaxIntermediate),
            Heads = m.Int("heads", min: 1, max: ContractLimits.MaxHeads),
            KvHeads = m.Int("kv_heads", min: 1, max: ContractLimits.MaxHeads),
            Vocab = m.Int("vocab", min: 1, max: ContractLimits.MaxVocab),
            DtypeBytes = m.OptInt("dtype_bytes", min: 1, max: 8) ?? 2,
            MaxContext = m.Int("max_context", min: 1, max: ContractLimits.MaxContext),
            TiedEmbeddings = m.OptBool("tied_embeddings", false),
            Source = m.OptString("source"),
        };
        if (card.Heads > 0 && card.Hidden % card.Heads != 0)
            m.Error("heads", $"{card.Heads} heads do not divide hidden size {card.Hidden}");
        if (card.KvHeads > 0 && card.Heads % card.KvHeads != 0)
            m.Error("kv_heads", $"{card.KvHeads} KV heads do not divide {card.Heads} attention heads");
        return card;
    }

    public static TraceRef Trace(MapReader m) => new()
    {
        Path = m.String("path"),
        Format = m.OptEnum("format", TraceFormat.Azure),
        TimeScale = m.OptDouble("time_scale", positive: true, max: ContractLimits.MaxTimeScale, min: ContractLimits.MinTimeScale) ?? 1.0,
        StartS = m.OptDouble("start_s", max: ContractLimits.MaxSeconds) ?? 0,
        DurationS = m.OptDouble("duration_s", positive: true, max: ContractLimits.MaxSeconds),
    };

    public static SyntheticComponent Component(MapReader m) => new()
    {
        Profile = m.OptEnum("profile", LengthProfile.AzureConv),
        RateRps = m.Double("rate_rps", max: ContractLimits.MaxRateRps),
        Amplitude = m.OptDouble("amplitude", max: 1.0) ?? 0,
        PeriodS = m.OptDouble("period_s", positive: true, max: ContractLimits.MaxSeconds) ?? 3600,
        PhaseS = m.OptDouble("phase_s", max: ContractLimits.MaxSeconds) ?? 0,
    };

    public static SyntheticSpec Synthetic(MapReader m) => new()
    {
        Seed = m.OptInt("seed") ?? 1,
        DurationS = m.Double("duration_s", max: ContractLimits.MaxSyntheticSeconds),
        Components = m.List("components", Component, maxCount: ContractLimits.MaxComponents),
    };

    public static Workload Workload(MapReader m)
    {
        var trace = m.Map("trace");
        var synthetic = m.Map("synthetic");
        var workload = new Workload
        {
            Name = m.String("name"),
            Trace = trace is null ? null : Finish(trace, Trace(trace)),
            Synthetic = synthetic is null ? null : Finish(synthetic, Synthetic(synthetic)),
            WindowS = m.OptDouble("window_s", positive: true, max: ContractLimits.MaxSeconds) ?? 60,
            NumTypes = m.OptInt("num_types", min: 1, max: 64) ?? 4,
            OverContext = m.OptEnum("over_context", OverContext.Clip),
        };
        if (workload.Trace is null && workload.Synthetic is null)
            m.Context.Error(m.Node, m.Field("trace"), "a workload needs a trace, a synthetic spec, or both");
        return workload;
    }

    public static Slo Slo(MapReader m) => new()
    {
        TtftS = m.OptDouble("ttft_s", positive: true, max: ContractLimits.MaxSeconds),
        TpotS = m.OptDouble("tpot_s", positive: true, max: ContractLimits.MaxSeconds),
        E2eS = m.OptDouble("e2e_s", positive: true, max: ContractLimits.MaxSeconds),
    };

    public static PlannerOptions PlannerOptions(MapReader m) => new()
    {
        Kind = m.OptEnum("kind", PlannerKind.Cpsat),
        Rho = m.OptDouble("rho", positive: true, max: 1.0) ?? 0.85,
        MaxSolveSeconds = m.OptDouble("max_solve_seconds", positive: true, max: 3600) ?? 1.0,
        MaxWallSeconds = m.OptDouble("max_wall_seconds", positive: true, max: 3600),
        Switching = m.OptEnum("switching", SwitchMode.Hot),
        MaxTp = m.OptInt("max_tp", min: 1, max: ContractLimits.MaxParallelism),
        MinSwitchServedGain = m.OptDouble("min_switch_served_gain", min: 0, max: 1.0) ?? 0.005,
        MinSwitchLatencyGain = m.OptDouble("min_switch_latency_gain", min: 0, max: 1.0) ?? 0.05,
        MinSwitchGainSigmas = m.OptDouble("min_switch_gain_sigmas", min: 0, max: 10.0) ?? 0,
    };

    /// <summary>One constraint: the fields its kind takes (any other is reported as unknown, with the expected ones).</summary>
    public static ConstraintSpec Constraint(MapReader m)
    {
        var kindText = m.String("kind");
        if (!EnumNames.TryParse<ConstraintKind>(kindText, out var kind))
        {
            if (kindText.Length > 0) m.Error("kind", $"'{kindText}' is not one of: {string.Join(", ", EnumNames.All<ConstraintKind>())}");
            m.IgnoreRest();
            return new ConstraintSpec { Kind = ConstraintKind.MaxTp, Value = int.MaxValue };
        }
        return kind switch
        {
            ConstraintKind.MaxReplicas => new ConstraintSpec
            {
                Kind = kind, Tp = m.Int("tp", min: 1), Pp = m.OptInt("pp", min: 1) ?? 1, GpuType = m.OptString("gpu_type"), Count = m.OptInt("count", min: 0, required: true) ?? 0,
            },
            ConstraintKind.KeepFree => new ConstraintSpec { Kind = kind, Node = m.String("node"), Gpus = m.OptInt("gpus", min: 1) },
            ConstraintKind.Pin => Pin(m),
            ConstraintKind.MaxTp or ConstraintKind.MaxPp => new ConstraintSpec { Kind = kind, Value = m.Int("value", min: 1) },
            _ => new ConstraintSpec { Kind = kind },
        };
    }

    /// <summary>A pin's tp defaults to its devices over its pp (4 devices, pp 1: tp 4).</summary>
    private static ConstraintSpec Pin(MapReader m)
    {
        var devices = m.StringList("devices");
        int pp = m.OptInt("pp", min: 1) ?? 1;
        return new ConstraintSpec
        {
            Kind = ConstraintKind.Pin, Devices = devices, Pp = pp, Tp = m.OptInt("tp", min: 1) ?? Math.Max(1, devices.Count / pp), Id = m.OptString("id"),
        };
    }

    public static ConstraintSet Constraints(MapReader m) => new() { Constraints = m.List("constraints", Constraint) };

    public static Scenario Scenario(MapReader m)
    {
        var workload = m.Map("workload", required: true);
        var slo = m.Map("slo");
        var planner = m.Map("planner");
        return new Scenario
        {
            Name = m.String("name"),
            Description = m.OptString("description"),
            Cluster = m.String("cluster"),
            Model = m.String("model"),
            Workload = workload is null ? new Workload { Name = "", WindowS = 60 } : Finish(workload, Workload(workload)),
            Slo = slo is null ? new Slo() : Finish(slo, Slo(slo)),
            Planner = planner is null ? new PlannerOptions() : Finish(planner, PlannerOptions(planner)),
            Constraints = m.List("constraints", Constraint, required: false),
        };
    }

    public static RequestTypeSpec RequestType(MapReader m) => new()
    {
        Name = m.String("name"),
        InputTokens = m.Double("input_tokens", max: ContractLimits.MaxTokens),
        OutputTokens = m.Double("output_tokens", max: ContractLimits.MaxTokens),
        RateRps = m.OptDouble("rate_rps", max: ContractLimits.MaxRateRps) ?? 0,
    };

    public static ReplicaSpec Replica(MapReader m) => new()
    {
        Id = m.String("id"),
        GpuType = m.String("gpu_type"),
        Devices = m.StringList("devices"),
        Tp = m.OptInt("tp", min: 1, max: ContractLimits.MaxParallelism) ?? 1,
        Pp = m.OptInt("pp", min: 1, max: ContractLimits.MaxParallelism) ?? 1,
        MaxNumSeqs = m.OptInt("max_num_seqs", min: 1, max: ContractLimits.MaxNumSeqs) ?? 256,
        MaxNumBatchedTokens = m.OptInt("max_num_batched_tokens", min: 1, max: ContractLimits.MaxBatchedTokens) ?? 8192,
    };

    public static RoutingEntry Routing(MapReader m) => new() { Type = m.String("type"), Weights = m.NumberMap("weights") };

    public static SwitchStep Step(MapReader m) => new()
    {
        Kind = m.OptEnum("kind", SwitchStepKind.Keep),
        Replica = m.String("replica"),
        Device = m.OptString("device"),
        Source = m.OptString("source"),
        Bytes = m.OptLong("bytes", max: 1L << 60),
        EstSeconds = m.OptDouble("est_seconds", max: ContractLimits.MaxSeconds) ?? 0,
    };

    public static SolveStage Stage(MapReader m) => new()
    {
        Name = m.String("name"),
        // Missing or unreadable (already reported): read as Heuristic, the one status with no rule
        // of its own, so the error is not followed by a second one about stopped_by.
        Status = m.OptEnum("status", SolveStageStatus.Heuristic),
        Objective = m.OptDouble("objective"),
        Bound = m.OptDouble("bound"),
        DeterministicTime = m.OptDouble("deterministic_time"),
        Budget = m.OptDouble("budget"),
        WallSeconds = m.OptDouble("wall_seconds"),
        StoppedBy = m.OptString("stopped_by"),
    };

    public static Plan Plan(MapReader m)
    {
        var window = m.Map("window");
        var predicted = m.Map("predicted");
        var sw = m.Map("switch");
        var plan = new Plan
        {
            Version = m.OptInt("version", min: 0, max: 1_000_000_000) ?? 1,
            Model = m.String("model"),
            Cluster = m.String("cluster"),
            Planner = m.OptString("planner") ?? "cpsat",
            Window = window is null ? new PlanWindow() : Finish(window, new PlanWindow
            {
                StartS = window.OptDouble("start_s", max: ContractLimits.MaxSeconds) ?? 0,
                LengthS = window.OptDouble("length_s", positive: true, max: ContractLimits.MaxSeconds) ?? 60,
            }),
            RequestTypes = m.List("request_types", RequestType, maxCount: ContractLimits.MaxRequestTypes),
            Replicas = m.List("replicas", Replica, maxCount: ContractLimits.MaxReplicas),
            Routing = m.List("routing", Routing, maxCount: ContractLimits.MaxRequestTypes),
            Predicted = predicted is null ? null : Finish(predicted, new PredictedFigures
            {
                DemandRps = predicted.OptDouble("demand_rps") ?? 0,
                ServedRps = predicted.OptDouble("served_rps") ?? 0,
                MaxUtilization = predicted.OptDouble("max_utilization") ?? 0,
                MeanLatencyS = predicted.OptDouble("mean_latency_s"),
                SolveStatus = predicted.OptString("solve_status"),
                Objective = predicted.OptDouble("objective"),
                Bound = predicted.OptDouble("bound"),
                Gap = predicted.OptDouble("gap"),
                SolveSeconds = predicted.OptDouble("solve_seconds"),
                Stages = predicted.Has("stages") ? predicted.List("stages", Stage) : null,
            }),
            Switch = sw is null ? null : Finish(sw, new SwitchPlan
            {
                FromVersion = sw.OptInt("from_version", min: 0, max: 1_000_000_000) ?? 0,
                Steps = sw.List("steps", Step, required: false),
                TotalBytes = sw.OptLong("total_bytes", max: 1L << 60),
                EstSeconds = sw.OptDouble("est_seconds", max: ContractLimits.MaxSeconds) ?? 0,
            }),
        };
        PlanChecks.CheckInternal(plan, m.Field("").TrimEnd('.'), (field, message) => m.Context.Error(null, field, message));
        return plan;
    }

    public static PlanSchedule Schedule(MapReader m) => new()
    {
        Model = m.String("model"),
        Cluster = m.String("cluster"),
        WindowS = m.OptDouble("window_s", positive: true, max: ContractLimits.MaxSeconds) ?? 60,
        Plans = m.List("plans", Plan, maxCount: 100_000),
    };

    private static T Finish<T>(MapReader reader, T value)
    {
        reader.Finish();
        return value;
    }

    private static void Unique(MapReader m, string key, IEnumerable<string> names, string what)
    {
        var seen = new HashSet<string>();
        var i = 0;
        foreach (var name in names)
        {
            if (name.Length > 0 && !seen.Add(name))
                m.Context.Error(null, $"{m.Field(key)}[{i}].name", $"{what} '{name}' is defined twice");
            i++;
        }
    }
}
