using System.Diagnostics;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using Orleans;
using Orleans.Runtime;

namespace OServe.Engine.Distributed;

/// <summary>The controller's persisted state: the plan asked for, the plan in force, and the in-force epoch.</summary>
[GenerateSerializer]
public sealed class ControllerState
{
    [Id(0)] public string? TargetYaml { get; set; }
    [Id(1)] public string? InForceYaml { get; set; }
    [Id(2)] public int Epoch { get; set; }
}

/// <summary>How the controller moves weights and how long a replica out of the plan stays loaded for late requests.</summary>
public sealed record ControllerSettings
{
    /// <summary>A new replica takes its weights from a worker that holds the model's replicas (hot copy across nodes), not its own host copy.</summary>
    public bool WeightsFromPeers { get; init; } = true;

    /// <summary>A replica left out of the plan in force is unloaded this long after: front ends poll the plan, and a request they routed by the old one must still find it.</summary>
    public TimeSpan UnloadGrace { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan ReconcilePeriod { get; init; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>
/// The cluster's plan controller (one activation per cluster, anywhere in it; Orleans re-activates it
/// on another worker when its own dies, and its state comes back from grain storage). Level-triggered:
/// every reconcile reads the live workers from Orleans membership and what each holds, builds the
/// target's missing replicas on live workers (make-before-break: before the plan in force names them),
/// makes the plan in force the target restricted to the replicas that are up (<see cref="PlanRestriction"/>),
/// and unloads what the target no longer has. A dead worker thus drops out of the plan in force within
/// a reconcile of Orleans declaring it dead, and a worker that comes back gets its replicas again.
/// </summary>
public sealed class ClusterControllerGrain(
    [PersistentState("plan", ClusterHosting.PlanStorageName)] IPersistentState<ControllerState> state,
    IClusterMembershipService membership,
    ControllerSettings settings,
    ILogger<ClusterControllerGrain> logger) : Grain, IClusterControllerGrain
{
    private readonly Dictionary<string, DateTime> _outOfPlanSince = new(StringComparer.Ordinal);
    private string[] _liveNodes = [];
    private string[] _missing = [];
    private string? _lastEvent;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        this.RegisterGrainTimer(ct => ReconcileAsync(null, ct), new GrainTimerCreationOptions(settings.ReconcilePeriod, settings.ReconcilePeriod)
        {
            Interleave = false, // never while Apply or another reconcile runs
            KeepAlive = true,   // the controller stays active while the cluster runs
        });
        logger.LogInformation("plan controller {Cluster} active (epoch {Epoch}, {Has} target plan)",
            this.GetPrimaryKeyString(), state.State.Epoch, state.State.TargetYaml is null ? "no" : "a");
        return Task.CompletedTask;
    }

    public async Task<ClusterPlanView> Initialize(string planYaml, int knownEpoch)
    {
        if (state.State.TargetYaml is null)
        {
            Parse(planYaml, "initial plan");
            state.State.TargetYaml = planYaml;
            state.State.Epoch = Math.Max(state.State.Epoch, knownEpoch);
            await state.WriteStateAsync();
            _lastEvent = "initial plan installed";
            await ReconcileAsync(null, CancellationToken.None);
        }
        return View();
    }

    public Task<ClusterPlanView> GetPlan() => Task.FromResult(View());

    public async Task<ClusterSwitchReport> Apply(string planYaml)
    {
        var watch = Stopwatch.StartNew();
        Parse(planYaml, "request-body");
        var previous = state.State.TargetYaml;
        state.State.TargetYaml = planYaml;
        var loads = new List<LoadReport>();
        var failure = await ReconcileAsync(loads, CancellationToken.None);
        if (failure is not null)
        {
            // Roll back: the old target again; what this switch built is out of it, so reconciles unload it.
            state.State.TargetYaml = previous;
            await ReconcileAsync(null, CancellationToken.None);
            return new ClusterSwitchReport(false, state.State.Epoch, loads.ToArray(), [], _missing, watch.Elapsed.TotalSeconds, failure);
        }
        // The replaced replicas stay loaded for the grace period (front ends still routing by the old plan find them), then go.
        var retiring = _outOfPlanSince.Keys.Select(k => k.Replace("|", ": ")).Order(StringComparer.Ordinal).ToArray();
        return new ClusterSwitchReport(true, state.State.Epoch, loads.ToArray(), retiring, _missing, watch.Elapsed.TotalSeconds, null);
    }

    private ClusterPlanView View() => new(state.State.Epoch, state.State.InForceYaml, state.State.TargetYaml, _liveNodes, _missing, _lastEvent);

    /// <summary>One pass; returns the first load failure (the others are retried next time).</summary>
    private async Task<string?> ReconcileAsync(List<LoadReport>? loads, CancellationToken cancellationToken)
    {
        if (state.State.TargetYaml is not { } targetYaml)
            return null;
        var target = Parse(targetYaml, "stored target plan");
        var live = membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).Distinct().Order(StringComparer.Ordinal).ToArray();
        _liveNodes = live;

        var holdings = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (node, status) in await Task.WhenAll(live.Select(async n => (n, await TryStatusAsync(n)))))
            if (status is not null)
                holdings[node] = status.Replicas.Where(r => !r.IsRetiring).Select(r => r.Key).ToHashSet(StringComparer.Ordinal);

        string? failure = null;
        var missing = new List<string>();
        foreach (var spec in target.Replicas)
        {
            var shape = ReplicaShape.Of(spec);
            if (!holdings.TryGetValue(shape.Node, out var held))
            {
                missing.Add($"{spec.Id} (worker {shape.Node} is not up)");
                continue;
            }
            if (held.Contains(shape.Key))
                continue;
            string? peer = settings.WeightsFromPeers ? holdings.FirstOrDefault(h => h.Key != shape.Node && h.Value.Count > 0).Key : null;
            try
            {
                var report = await Worker(shape.Node).LoadReplica(shape, peer);
                loads?.Add(report);
                held.Add(shape.Key);
                _lastEvent = $"loaded {spec.Id} on {shape.Node} from {report.Origin} in {report.Seconds:F2}s";
            }
            catch (Exception error) when (!cancellationToken.IsCancellationRequested)
            {
                failure ??= $"building {spec.Id} on {shape.Node}: {error.Message}";
                missing.Add($"{spec.Id} (load failed: {error.Message})");
                logger.LogWarning("plan controller: building {Replica} on {Node} failed: {Error}", spec.Id, shape.Node, error.Message);
            }
        }
        _missing = missing.ToArray();
        if (failure is not null && loads is not null)
            return failure; // Apply rolls back before anything routes to the new plan

        var up = target.Replicas.Where(r => holdings.TryGetValue(ReplicaShape.Of(r).Node, out var h) && h.Contains(ReplicaShape.Of(r).Key))
            .Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        var current = state.State.InForceYaml is { } y ? Parse(y, "stored plan in force") : null;
        var next = PlanRestriction.Restrict(target, up, state.State.Epoch + 1);
        bool changed = next is null ? current is not null : current is null || !PlanRestriction.SameDeployment(current, next);
        if (changed)
        {
            state.State.Epoch++;
            state.State.InForceYaml = next is null ? null : ContractYaml.Write(next);
            await state.WriteStateAsync(cancellationToken);
            _lastEvent = $"plan in force: epoch {state.State.Epoch}, replicas {(next is null ? "none" : string.Join(",", next.Replicas.Select(r => r.Id)))}" +
                (missing.Count > 0 ? $"; missing {string.Join("; ", missing)}" : "");
            logger.LogInformation("plan controller: {Event}", _lastEvent);
        }
        MarkStrays(target, holdings);
        if (loads is null)
            await UnloadStraysAsync();
        return failure;
    }

    private void MarkStrays(Plan target, Dictionary<string, HashSet<string>> holdings)
    {
        var wanted = target.Replicas.Select(r => ReplicaShape.Of(r).Key).ToHashSet(StringComparer.Ordinal);
        var now = DateTime.UtcNow;
        var stray = holdings.SelectMany(h => h.Value.Where(k => !wanted.Contains(k)).Select(k => $"{h.Key}|{k}")).ToHashSet(StringComparer.Ordinal);
        foreach (var key in stray)
            _outOfPlanSince.TryAdd(key, now);
        foreach (var key in _outOfPlanSince.Keys.Where(k => !stray.Contains(k)).ToArray())
            _outOfPlanSince.Remove(key);
    }

    private async Task UnloadStraysAsync()
    {
        var now = DateTime.UtcNow;
        var due = _outOfPlanSince.Where(kv => now - kv.Value >= settings.UnloadGrace).Select(kv => kv.Key).ToArray();
        foreach (var entry in due)
        {
            var (node, key) = (entry.Split('|')[0], entry.Split('|')[1]);
            _outOfPlanSince.Remove(entry);
            try
            {
                if (await Worker(node).UnloadReplica(key))
                    _lastEvent = $"unloaded {key} from {node}";
            }
            catch (Exception error)
            {
                logger.LogWarning("plan controller: unloading {Replica} on {Node} failed: {Error}", key, node, error.Message);
            }
        }
    }

    private async Task<WorkerStatus?> TryStatusAsync(string node)
    {
        try
        {
            return await Worker(node).GetStatus().WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception error)
        {
            logger.LogWarning("plan controller: worker {Node} did not answer: {Error}", node, error.Message);
            return null;
        }
    }

    private IWorkerGrain Worker(string node) => GrainFactory.GetGrain<IWorkerGrain>(node);

    private static Plan Parse(string yaml, string what)
    {
        try
        {
            return ContractYaml.ParsePlan(yaml, what).Value;
        }
        catch (ContractException e)
        {
            throw new ArgumentException($"{what}: {string.Join("; ", e.Errors)}");
        }
    }
}
