using OServe.Contracts;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using Orleans;

namespace OServe.Engine.Distributed;

/// <summary>
/// What the cluster's controller re-plans with when a worker stays dead: the hardware (the cluster
/// file the workers were started with), the model card, the cost model, and the planner's options.
/// Without it (<see cref="ControllerSettings.Replan"/> null) a death only restricts the plan to the
/// replicas left (<see cref="PlanRestriction"/>).
/// </summary>
public sealed record ReplanSettings
{
    public required Cluster Hardware { get; init; }
    public required ModelCard Model { get; init; }
    public CostCoefficients Coefficients { get; init; } = CostCoefficientsModule.defaults;

    /// <summary>CP-SAT with its work budget in deterministic seconds and no wall-clock cap: the same plan on any machine and load.</summary>
    public PlannerOptions Planner { get; init; } = new();
    public Slo Slo { get; init; } = new();

    /// <summary>A worker must stay dead this long before the controller re-plans without it (a quick restart keeps the plan).</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A type observed below this rate is planned at this rate, so every type keeps a route.</summary>
    public double MinTypeRateRps { get; init; } = 0.02;

    /// <summary>The arrival rates the front ends observed over this last stretch are the workload planned for.</summary>
    public TimeSpan ArrivalWindow { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The planner may give a replica pipeline stages on several nodes (whole nodes each, priced
    /// with the cluster file's inter-node link), which the workers run by passing activations
    /// between them. Off by default (the planner's <c>no_cross_node_pp</c>: every replica on one
    /// node): the planner prices the hop as a network link, while between workers it is also an
    /// Orleans call per step (3.1-3.9 ms a token on this machine's loopback, measured), so a cluster
    /// file's link figures overstate it until they are calibrated.
    /// </summary>
    public bool CrossNodePipelines { get; init; }
}

/// <summary>Why the controller re-planned and what the new plan replaced; shown in GET /v1/cluster and the controller's log.</summary>
[GenerateSerializer, Immutable]
public sealed record ReplanRecord(
    [property: Id(0)] string Reason,
    [property: Id(1)] string Replaced,
    [property: Id(2)] string[] Without,
    [property: Id(3)] string Workload,
    [property: Id(4)] string Planner);

/// <summary>
/// One re-plan: the CP-SAT planner (<see cref="Planning.plan"/>, as <c>oserve plan</c> and the
/// single-process controller call it) on the devices of the live workers only, for the given rates,
/// placed against the plan in force (so its surviving replicas are kept where the planner's switch
/// rule says so). No replica may span nodes (a replica lives in one worker).
/// </summary>
public static class ClusterReplanner
{
    /// <summary>The new plan and its record; an error names why the planner gave none.</summary>
    /// <param name="observedRates">Requests/s per type of <paramref name="target"/> as the front ends saw them; null: the target's declared rates.</param>
    public static (Plan? Plan, ReplanRecord? Record, string? Error) Plan(ReplanSettings settings, Plan target, Plan? inForce,
        IReadOnlyList<string> liveNodes, IReadOnlyList<string> without, IReadOnlyList<double>? observedRates, string workloadNote)
    {
        var (request, error) = Request(settings, target, inForce, liveNodes, observedRates, target.Window.LengthS is > 0 and var w ? w : 60, 0);
        if (request is null)
            return (null, null, error);
        var nodes = request.Cluster.Nodes;
        var types = request.RequestTypes;
        var result = Planning.plan(request);
        if (result.IsError)
            return (null, null, "planner: " + string.Join("; ", result.ErrorValue.Select(e => e.ToString())));
        var plan = result.ResultValue.Plan;
        if (OffLiveWorkers(plan, liveNodes) is { } off)
            return (null, null, off);
        int devices = nodes.Sum(n => n.Gpus);
        var record = new ReplanRecord(
            $"{string.Join(",", without)} dead: re-planned on {devices} devices of {string.Join(",", nodes.Select(n => n.Name))}",
            inForce is null ? "none" : Describe(inForce),
            without.ToArray(),
            workloadNote + ": " + string.Join(", ", types.Select(t => $"{t.Name} {t.RateRps:0.###}/s")),
            $"{plan.Planner}: {Describe(plan)}" + (result.ResultValue.SwitchReason is { Length: > 0 } why ? $" ({why})" : ""));
        return (plan, record, null);
    }

    /// <summary>
    /// The planner's request for a deployment of the live workers' devices only (the cluster file's
    /// nodes less the others, no replica across nodes), CP-SAT in deterministic time with no
    /// wall-clock cap, priced against <paramref name="inForce"/>; the re-plan and the forecasting loop both ask it.
    /// </summary>
    /// <param name="rates">Requests/s per type of <paramref name="plan"/>; null: its declared rates. Each is planned at least at <see cref="ReplanSettings.MinTypeRateRps"/>.</param>
    public static (PlanRequest? Request, string? Error) Request(ReplanSettings settings, Plan plan, Plan? inForce,
        IReadOnlyList<string> liveNodes, IReadOnlyList<double>? rates, double windowS, double windowStartS)
    {
        var nodes = settings.Hardware.Nodes.Where(n => liveNodes.Contains(n.Name, StringComparer.Ordinal)).ToArray();
        if (nodes.Length == 0)
            return (null, $"no live worker is a node of cluster '{settings.Hardware.Name}' (live: {string.Join(", ", liveNodes)})");
        var hardware = settings.Hardware with { Name = plan.Cluster, Nodes = nodes };
        var types = Control.PlanStep.Forecast(plan.RequestTypes, rates ?? plan.RequestTypes.Select(t => t.RateRps).ToArray(), settings.MinTypeRateRps);
        return (new PlanRequest(hardware, settings.Model with { Name = plan.Model }, types)
        {
            Slo = settings.Slo,
            Options = settings.Planner with { Kind = PlannerKind.Cpsat, MaxWallSeconds = null },
            Coefficients = settings.Coefficients,
            ConstraintSpecs = settings.CrossNodePipelines ? [] : [new ConstraintSpec { Kind = ConstraintKind.NoCrossNodePp }],
            NumWorkers = 1,
            Current = inForce,
            WindowStartS = windowStartS,
            WindowS = windowS,
        }, null);
    }

    /// <summary>Why a plan cannot be served by these workers (a replica on a worker that is not live, or a stage across two); null when it can.</summary>
    public static string? OffLiveWorkers(Plan plan, IReadOnlyList<string> liveNodes)
    {
        foreach (var replica in plan.Replicas)
        {
            var shape = ReplicaShape.Of(replica);
            if (shape.StageRuns(out var error) is null)
                return $"planner: replica {replica.Id} on {string.Join(",", replica.Devices)}: {error}";
            if (shape.Nodes.FirstOrDefault(n => !liveNodes.Contains(n, StringComparer.Ordinal)) is { } down)
                return $"planner: replica {replica.Id} on {string.Join(",", replica.Devices)} uses worker {down}, which is not live";
        }
        return null;
    }

    /// <summary>"r0 tp1@node0/0, r2 tp1@node2/0".</summary>
    public static string Describe(Plan plan) =>
        string.Join(", ", plan.Replicas.Select(r => $"{r.Id} tp{r.Tp}xpp{r.Pp}@{string.Join(",", r.Devices)}"));
}
