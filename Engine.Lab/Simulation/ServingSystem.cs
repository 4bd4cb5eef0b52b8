using System.Diagnostics;
using OServe.Contracts;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;

namespace OServe.Engine.Simulation;

/// <summary>The systems a comparison runs, all on the same trace, cost model and simulator.</summary>
public enum ServingSystem
{
    /// <summary>CP-SAT planner on the forecast (ForecastMethod.Auto) of each window, live hot switching.</summary>
    OServe,
    /// <summary>The best single (TP, PP) over every GPU, found by simulating each; never changes.</summary>
    StaticHomogeneous,
    /// <summary>The same planner, but every switch reloads weights from storage (cold).</summary>
    Reload,
    /// <summary>The paper's two-level heuristic (max-flow routing, greedy GPU moves), hot switching.</summary>
    PaperHeuristic,
    /// <summary>What a vLLM user deploys: the smallest TP that holds the weights with at least 30% of GPU memory left, over every GPU.</summary>
    StaticVllmDefault,
}

/// <summary>Plans of one system for a workload, and what planning cost in wall time; with plan verification, what each window chose.</summary>
public sealed record SystemPlans(ServingSystem System, IReadOnlyList<Plan> Plans, double PlanningSeconds, double MaxPlanningSeconds, int NumSwitches, string Label,
    IReadOnlyList<WindowChoice>? Choices = null);

/// <summary>One system's simulated run; <paramref name="Role"/> says what a static shape stands for in a comparison (best, median, worst in hindsight).</summary>
public sealed record SystemResult(SystemPlans Plans, SimulationReport Report, string? Role = null)
{
    /// <summary>Tables and plots show every system but the static shapes without a role (those are in results.json).</summary>
    public bool IsShown => Plans.System != ServingSystem.StaticHomogeneous || Role is not null;
}

/// <summary>Every feasible homogeneous shape simulated on the trace, and the ones a comparison reports.</summary>
public sealed record StaticBaselines(SystemResult Best, SystemResult Median, SystemResult Worst, SystemResult? VllmDefault, IReadOnlyList<SystemResult> All);

/// <summary>Produces each system's plans and runs them through the simulator.</summary>
public static class SystemRunner
{
    public static string Name(ServingSystem s) => s switch
    {
        ServingSystem.OServe => "oserve",
        ServingSystem.StaticHomogeneous => "static",
        ServingSystem.Reload => "reload",
        ServingSystem.StaticVllmDefault => "static-vllm-default",
        _ => "paper-heuristic",
    };

    /// <summary>
    /// vLLM's usual deployment: the smallest TP degree (a power of two within a node) whose weight
    /// shard leaves at least 30% of every GPU's memory for the KV cache, replicated over the cluster.
    /// Null when no degree leaves that much.
    /// </summary>
    public static int? VllmDefaultTp(ScenarioWorkload w)
    {
        double memory = w.Cluster.Nodes.Min(n => w.Cluster.GpuTypeOf(n).MemoryGib) * (1L << 30);
        int maxTp = w.Cluster.Nodes.Min(n => n.Gpus);
        for (int tp = 1; tp <= maxTp; tp *= 2)
            if (w.Model.Heads % tp == 0 && (double)w.Model.WeightBytes / tp <= 0.7 * memory)
                return tp;
        return null;
    }

    /// <summary>Per-window plans from the planner (forecast, solve, keep-or-switch, switch steps).</summary>
    /// <param name="service">Rates and latencies per (config, type) for the planner; null: its analytic model.</param>
    public static SystemPlans PlanSchedule(ScenarioWorkload w, ServingSystem system, int numWorkers = 1, IServiceModel? service = null)
    {
        var options = w.Scenario.Planner with
        {
            Kind = system == ServingSystem.PaperHeuristic ? PlannerKind.PaperHeuristic : PlannerKind.Cpsat,
            Switching = system == ServingSystem.Reload ? SwitchMode.Reload : SwitchMode.Hot,
        };
        var request = new ScheduleRequest(w.Cluster, w.Model, w.Trace)
        {
            NumTypes = w.Scenario.Workload.NumTypes,
            WindowS = w.Scenario.Workload.WindowS,
            Slo = w.Scenario.Slo,
            Options = options,
            NumWorkers = numWorkers,
            ServiceModel = service,
            ConstraintSpecs = w.Scenario.Constraints,
        };
        var outcome = OServe.Planner.Planning.Scheduling.planSchedule(request);
        if (outcome.IsError)
            throw new PlanningException($"{Name(system)} planner: {string.Join("; ", outcome.ErrorValue)}");
        var o = outcome.ResultValue;
        var solveSeconds = o.Outcomes.Select(x => x.Solution.WallSeconds).ToList();
        return new SystemPlans(system, o.Schedule.Plans, solveSeconds.Sum(), solveSeconds.DefaultIfEmpty(0).Max(), o.NumSwitches, Name(system));
    }

    /// <summary>
    /// One (TP, PP) replicated over every GPU of every node, all types routed to all replicas. The
    /// scenario's constraints shape it: GPUs kept free are left out (the last of each node), a
    /// max_replicas rule caps the count; a shape that still breaks one (another shape pinned, TP
    /// over max_tp) is no candidate (null).
    /// </summary>
    public static Plan? Homogeneous(ScenarioWorkload w, int tp, int pp, CostCoefficients k)
    {
        var cluster = w.Cluster;
        var constraints = w.Scenario.Constraints;
        int size = tp * pp;
        var replicas = new List<ReplicaSpec>();
        int cap = constraints.Where(c => c.Kind == ConstraintKind.MaxReplicas && c.Tp == tp && (c.Pp ?? 1) == pp && c.GpuType is null)
            .Select(c => c.Count ?? 0).DefaultIfEmpty(int.MaxValue).Min();
        foreach (var node in cluster.Nodes)
        {
            if (node.Gpus % size != 0) return null;
            int usable = node.Gpus - PlanConstraints.FreeToKeep(constraints, node);
            for (int first = 0; first + size <= usable && replicas.Count < cap; first += size)
                replicas.Add(new ReplicaSpec
                {
                    Id = $"r{replicas.Count}",
                    GpuType = node.GpuType,
                    Devices = Enumerable.Range(first, size).Select(i => $"{node.Name}/{i}").ToList(),
                    Tp = tp,
                    Pp = pp,
                });
        }
        if (replicas.Count == 0) return null;
        var config = PlannerAdapter.Config(replicas[0], cluster);
        if (ReplicaCost.memory(k, PlannerAdapter.Model(w.Model), config).IsError) return null;
        var types = w.Types.Select(t => new RequestTypeSpec { Name = $"t{t.Id}", InputTokens = t.MeanInputTokens, OutputTokens = t.MeanOutputTokens }).ToList();
        var plan = new Plan
        {
            Model = w.Model.Name,
            Cluster = cluster.Name,
            Planner = $"static-tp{tp}-pp{pp}",
            RequestTypes = types,
            Replicas = replicas,
            Routing = types.Select(t => new RoutingEntry { Type = t.Name, Weights = replicas.ToDictionary(r => r.Id, _ => 1.0) }).ToList(),
        };
        return PlanConstraints.Violations(plan, constraints, cluster).Count == 0 ? PlanConstraints.WithPinIds(plan, constraints) : null;
    }

    /// <summary>Every feasible homogeneous shape (TP and PP powers of two within a node).</summary>
    public static IEnumerable<Plan> HomogeneousCandidates(ScenarioWorkload w, CostCoefficients k)
    {
        int maxTp = w.Scenario.Planner.MaxTp ?? int.MaxValue;
        foreach (var tp in new[] { 1, 2, 4, 8 })
            foreach (var pp in new[] { 1, 2, 4 })
                if (tp <= maxTp && Homogeneous(w, tp, pp, k) is { } plan)
                    yield return plan;
    }

    public static SimulationReport Simulate(ScenarioWorkload w, IReadOnlyList<Plan> plans, CostCoefficients k, Action<double>? progress = null)
    {
        var replicas = new CostModelReplicas(w.Cluster, w.Model, k);
        var setup = new SimulationSetup
        {
            Requests = w.Requests,
            Plans = plans,
            ReplicaModels = replicas.For,
            Switching = new SwitchCosts(w.Cluster, w.Model.KvBytesPerToken, k.LinkEfficiency),
            DrainMaxRemainingTokens = k.DrainMaxRemainingTokens,
            TypeNames = w.TypeNames,
        };
        var sim = new Simulation(setup);
        var clock = Stopwatch.StartNew();
        sim.Run(progress);
        return SimulationReport.Build(sim, w.Scenario.Slo, w.Scenario.Workload.WindowS, clock.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The strongest static deployment: every feasible homogeneous shape is simulated on the trace;
    /// among the shapes within <paramref name="sloTolerance"/> of the best SLO attainment, the lowest
    /// P99 end-to-end latency wins (<see cref="BestStaticIndex"/>).
    /// </summary>
    public static (SystemResult Best, IReadOnlyList<SystemResult> All) BestStatic(ScenarioWorkload w, CostCoefficients k, Action<double>? progress = null,
        double sloTolerance = VerificationOptions.DefaultSloTolerance)
    {
        var statics = Statics(w, k, progress, sloTolerance);
        return (statics.Best, statics.All);
    }

    /// <summary>
    /// Every feasible homogeneous shape, simulated on the trace: the best in hindsight
    /// (<see cref="BestStaticIndex"/>), the median and the worst by P99 E2E, and vLLM's default
    /// shape (<see cref="VllmDefaultTp"/>) as its own system. The search time counts as the best's
    /// planning time.
    /// </summary>
    public static StaticBaselines Statics(ScenarioWorkload w, CostCoefficients k, Action<double>? progress = null,
        double sloTolerance = VerificationOptions.DefaultSloTolerance)
    {
        var clock = Stopwatch.StartNew();
        var all = new List<SystemResult>();
        foreach (var plan in HomogeneousCandidates(w, k))
        {
            var report = Simulate(w, [plan], k, progress);
            all.Add(new SystemResult(new SystemPlans(ServingSystem.StaticHomogeneous, [plan], 0, 0, 0, plan.Planner), report));
        }
        if (all.Count == 0)
            throw new PlanningException(w.Scenario.Constraints.Count == 0
                ? $"{w.Model.Name} fits no homogeneous replica shape on {w.Cluster.Name}"
                : $"no homogeneous replica shape of {w.Model.Name} on {w.Cluster.Name} keeps the scenario's constraints ({string.Join("; ", w.Scenario.Constraints.Select(c => c.Describe()))})");
        int bestIndex = BestStaticIndex(all.Select(r => (r.Report.Overall.SloAttainment, r.Report.Overall.E2e.P99)).ToList(), sloTolerance);
        var byP99 = Enumerable.Range(0, all.Count).OrderBy(i => all[i].Report.Overall.E2e.P99).ToList();
        int medianIndex = byP99[(byP99.Count - 1) / 2], worstIndex = byP99[^1];
        for (int i = 0; i < all.Count; i++)
        {
            var roles = new[] { (bestIndex, "best static in hindsight"), (medianIndex, "median static"), (worstIndex, "worst static") }
                .Where(r => r.Item1 == i).Select(r => r.Item2).ToList();
            if (roles.Count > 0) all[i] = all[i] with { Role = string.Join(", ", roles) };
        }
        all[bestIndex] = all[bestIndex] with
        {
            Plans = all[bestIndex].Plans with { PlanningSeconds = clock.Elapsed.TotalSeconds, MaxPlanningSeconds = clock.Elapsed.TotalSeconds },
        };
        SystemResult? vllm = null;
        if (VllmDefaultTp(w) is int tp && all.FirstOrDefault(r => r.Plans.Label == $"static-tp{tp}-pp1") is { } shape)
            vllm = shape with
            {
                Plans = shape.Plans with { System = ServingSystem.StaticVllmDefault, Label = Name(ServingSystem.StaticVllmDefault), PlanningSeconds = 0, MaxPlanningSeconds = 0 },
                Role = $"tp{tp}: the smallest TP leaving 30% of GPU memory for KV",
            };
        return new StaticBaselines(all[bestIndex], all[medianIndex], all[worstIndex], vllm, all);
    }

    /// <summary>
    /// The static shape the comparison uses: the lowest P99 E2E among those whose SLO attainment is
    /// within <paramref name="sloTolerance"/> of the best (ties: the first). Strict attainment order
    /// would let 100.0% against 99.9% pick a shape with a far higher P99, and then the P99 ratio
    /// would credit OServe with a gain a static shape also has.
    /// </summary>
    public static int BestStaticIndex(IReadOnlyList<(double SloAttainment, double P99)> shapes, double sloTolerance)
    {
        if (shapes.Count == 0) throw new ArgumentException("no static shapes to choose from", nameof(shapes));
        double bestAttainment = shapes.Max(s => s.SloAttainment);
        int best = -1;
        for (int i = 0; i < shapes.Count; i++)
            if (shapes[i].SloAttainment >= bestAttainment - sloTolerance && (best < 0 || shapes[i].P99 < shapes[best].P99))
                best = i;
        return best;
    }
}
