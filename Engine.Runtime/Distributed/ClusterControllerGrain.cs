using System.Diagnostics;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Orchestration;
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

    /// <summary>The planner's plan for the live workers while the ones in <see cref="ReplannedWithout"/> are dead; it stands in for the target until one of them is back.</summary>
    [Id(3)] public string? ReplannedYaml { get; set; }
    [Id(4)] public string[]? ReplannedWithout { get; set; }
    [Id(5)] public ReplanRecord? Replan { get; set; }

    /// <summary>The forecasting loop's rate history (<see cref="ClusterLoop.Snapshot"/>), so a re-activated controller forecasts from it.</summary>
    [Id(6)] public LoopHistory? LoopHistory { get; set; }

    /// <summary>The front ends' arrival reports of the last arrival window, so a re-activated controller re-plans for the observed workload at once.</summary>
    [Id(7)] public StoredArrival[]? Arrivals { get; set; }
}

/// <summary>How the controller moves weights and how long a replica out of the plan stays loaded for late requests.</summary>
public sealed record ControllerSettings
{
    /// <summary>A new replica takes its weights from a worker that holds the model's replicas (hot copy across nodes), not its own host copy.</summary>
    public bool WeightsFromPeers { get; init; } = true;

    /// <summary>A replica left out of the plan in force is unloaded this long after: front ends poll the plan, and a request they routed by the old one must still find it.</summary>
    public TimeSpan UnloadGrace { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// What such a replica's requests do then: Migrate (the default, as in one process) moves them
    /// to the replicas of the plan in force with their KV entries (fetched worker to worker, or
    /// handed over whole on the same worker); Drain lets them finish where they are.
    /// </summary>
    public InFlightPolicy InFlight { get; init; } = InFlightPolicy.Migrate;

    /// <summary>Under Migrate, a started request with at most this many engine steps left finishes where it is (0: every request moves).</summary>
    public int FinishInPlaceMaxSteps { get; init; }

    public TimeSpan ReconcilePeriod { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The front ends' arrival reports go to storage at most this often (only when new ones came), for a re-activated controller.</summary>
    public TimeSpan ArrivalsStoreInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Re-plan with the CP-SAT planner on the live workers' devices once a worker stays dead; null: only restrict the plan to the replicas left.</summary>
    public ReplanSettings? Replan { get; init; }

    /// <summary>Run the forecasting loop every window (<see cref="ClusterLoop"/>); null (the default): the plan changes only by PUT /v1/plan and re-plans.</summary>
    public LoopSettings? Loop { get; init; }
}

/// <summary>
/// The cluster's plan controller (one activation per cluster, anywhere in it; Orleans re-activates it
/// on another worker when its own dies, and its state comes back from grain storage). Level-triggered:
/// every reconcile reads the live workers from Orleans membership and what each holds, builds the
/// target's missing replicas on live workers (make-before-break: before the plan in force names them),
/// makes the plan in force the target restricted to the replicas that are up (<see cref="PlanRestriction"/>),
/// and unloads what the target no longer has. A dead worker thus drops out of the plan in force within
/// a reconcile of Orleans declaring it dead, and a worker that comes back gets its replicas again.
/// With <see cref="ControllerSettings.Replan"/>, a worker of the plan that stays declared dead for the
/// grace period makes the controller ask the planner for a deployment of the live workers' devices
/// (<see cref="ClusterReplanner"/>) for the workload the front ends observed; that plan then stands in
/// for the target (built make-before-break like any switch) until a worker it was made without is
/// live again, when the target comes back in full.
/// </summary>
public sealed class ClusterControllerGrain(
    [PersistentState("plan", ClusterHosting.PlanStorageName)] IPersistentState<ControllerState> state,
    IClusterMembershipService membership,
    ControllerSettings settings,
    ILogger<ClusterControllerGrain> logger) : Grain, IClusterControllerGrain
{
    private readonly Dictionary<string, DateTime> _outOfPlanSince = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTime> _deadSince = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTime> _orphanSince = new(StringComparer.Ordinal);
    private readonly ObservedArrivals _arrivals = new(settings.Replan?.ArrivalWindow ?? TimeSpan.FromSeconds(60));
    private string? _replanFailedFor;
    private string[] _liveNodes = [];
    private string[] _missing = [];
    private string? _lastEvent;
    private readonly ClusterLoop? _loop = settings.Loop is { } loop ? new ClusterLoop(loop) : null;
    private LoopRecord? _loopRecord;
    private LoopRecord? _loopSwitch;
    private (string Yaml, string[] Types)? _targetTypes;
    private bool _arrivalsChanged;
    private DateTime _arrivalsStored = DateTime.MinValue;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (_arrivals.Restore(state.State.Arrivals, DateTime.UtcNow) is > 0 and var restored)
            logger.LogInformation("plan controller: {Reports} arrival report(s) of the last window restored from storage", restored);
        this.RegisterGrainTimer(ct => ReconcileAsync(null, ct), new GrainTimerCreationOptions(settings.ReconcilePeriod, settings.ReconcilePeriod)
        {
            Interleave = false, // never while Apply or another reconcile runs
            KeepAlive = true,   // the controller stays active while the cluster runs
        });
        if (settings.Loop is { } loop)
        {
            if (_loop!.Restore(state.State.LoopHistory))
                logger.LogInformation("plan controller loop: rate history restored, {Windows} windows (next {Next})",
                    state.State.LoopHistory!.Rates[0].Length, _loop.NextWindow);
            this.RegisterGrainTimer(ct => LoopStepAsync(), new GrainTimerCreationOptions(loop.Window, loop.Window) { Interleave = false, KeepAlive = true });
        }
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

    public Task ReportArrivals(ArrivalReport report)
    {
        _arrivals.Add(report, DateTime.UtcNow);
        _arrivalsChanged = true;
        _loop?.Add(report);
        return Task.CompletedTask;
    }

    public async Task<ClusterSwitchReport> Apply(string planYaml)
    {
        var watch = Stopwatch.StartNew();
        Parse(planYaml, "request-body");
        var previous = (state.State.TargetYaml, state.State.ReplannedYaml, state.State.ReplannedWithout, state.State.Replan);
        state.State.TargetYaml = planYaml;
        // The operator's plan replaces a re-planned one too; a worker still dead gets it re-planned after the grace period.
        (state.State.ReplannedYaml, state.State.ReplannedWithout, state.State.Replan) = (null, null, null);
        var loads = new List<LoadReport>();
        var failure = await ReconcileAsync(loads, CancellationToken.None);
        if (failure is not null)
        {
            // Roll back: the old target again; what this switch built is out of it, so reconciles unload it.
            (state.State.TargetYaml, state.State.ReplannedYaml, state.State.ReplannedWithout, state.State.Replan) = previous;
            await ReconcileAsync(null, CancellationToken.None);
            return new ClusterSwitchReport(false, state.State.Epoch, loads.ToArray(), [], _missing, watch.Elapsed.TotalSeconds, failure);
        }
        await state.WriteStateAsync(); // the new target (and a dropped re-planned plan) even when the plan in force did not change
        // The replaced replicas stay loaded for the grace period (front ends still routing by the old plan find them), then go.
        var retiring = _outOfPlanSince.Keys.Select(k => k.Replace("|", ": ")).Order(StringComparer.Ordinal).ToArray();
        return new ClusterSwitchReport(true, state.State.Epoch, loads.ToArray(), retiring, _missing, watch.Elapsed.TotalSeconds, null);
    }

    private ClusterPlanView View() => new(state.State.Epoch, state.State.InForceYaml, state.State.TargetYaml, _liveNodes, _missing, _lastEvent)
    {
        Replan = state.State.ReplannedYaml is null ? null : state.State.Replan,
        Loop = _loopRecord,
        LoopSwitch = _loopSwitch,
        Observed = state.State.TargetYaml is { } target ? _arrivals.Describe(TypesOf(target), DateTime.UtcNow) : null,
    };

    /// <summary>The request types of the target plan, parsed once per target (front ends read the view several times a second).</summary>
    private string[] TypesOf(string targetYaml)
    {
        if (_targetTypes is not { } cached || !ReferenceEquals(cached.Yaml, targetYaml))
            _targetTypes = cached = (targetYaml, Parse(targetYaml, "stored target plan").RequestTypes.Select(t => t.Name).ToArray());
        return cached.Types;
    }

    /// <summary>
    /// One window of the forecasting loop: plan for the forecast against the plan in force on the live
    /// workers; a switch or re-route becomes the target through <see cref="Apply"/> (make-before-break,
    /// rolled back when a build fails), as an operator's PUT would.
    /// </summary>
    private async Task LoopStepAsync()
    {
        if (_loop is null || state.State.InForceYaml is not { } yaml)
            return;
        var inForce = Parse(yaml, "stored plan in force");
        var live = _liveNodes;
        var closed = _loop.Close(inForce); // here: arrival reports interleave with this step
        state.State.LoopHistory = _loop.Snapshot();
        try
        {
            await state.WriteStateAsync(); // before deciding: a controller re-activated meanwhile forecasts from this window too
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The history is kept in memory and written again next window; the plans are written where they change.
            logger.LogWarning("plan controller loop: storing the rate history failed ({Error}); it stays in memory", e.Message);
        }
        var (record, proposed) = await Task.Run(() => _loop.Decide(closed, inForce, live));
        if (proposed is not null)
        {
            var report = await Apply(ContractYaml.Write(proposed));
            record = record with { Outcome = report.Applied ? $"applied: epoch {report.Epoch} in {report.Seconds:F2} s" : $"not applied, rolled back: {report.Error}" };
            _lastEvent = $"controller loop {record.Describe()}";
            _loopSwitch = record;
        }
        _loopRecord = record;
        logger.LogInformation("plan controller loop: {Record}", record.Describe());
    }

    /// <summary>One pass; returns the first load failure (the others are retried next time).</summary>
    private async Task<string?> ReconcileAsync(List<LoadReport>? loads, CancellationToken cancellationToken)
    {
        if (state.State.TargetYaml is not { } targetYaml)
            return null;
        var operatorTarget = Parse(targetYaml, "stored target plan");
        var members = membership.CurrentSnapshot.Members.Values;
        var live = members.Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).Distinct().Order(StringComparer.Ordinal).ToArray();
        var dead = members.Where(m => m.Status == SiloStatus.Dead).Select(m => m.Name).Except(live).ToHashSet(StringComparer.Ordinal);
        _liveNodes = live;
        if (loads is null) // not inside a switch: that builds the operator's plan, and a re-plan waits for the next reconcile
            await ReplanIfDeadAsync(operatorTarget, live, dead);
        var target = await EffectiveTargetAsync(operatorTarget, live);

        var holdings = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var statuses = (await Task.WhenAll(live.Select(async n => (Node: n, Status: await TryStatusAsync(n))))).Where(s => s.Status is not null).ToArray();
        foreach (var (node, status) in statuses)
            holdings[node] = status!.Replicas.Where(r => !r.IsRetiring).Select(r => r.Key).ToHashSet(StringComparer.Ordinal);

        string? failure = null;
        var missing = new List<string>();
        foreach (var spec in target.Replicas)
        {
            var shape = ReplicaShape.Of(spec);
            var down = shape.Nodes.FirstOrDefault(n => !holdings.ContainsKey(n));
            if (down is not null || !holdings.TryGetValue(shape.Node, out var held))
            {
                missing.Add($"{spec.Id} (worker {down ?? shape.Node} is not up)");
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

        // Up: held by the worker that runs it, with every worker of its stages live.
        var up = target.Replicas.Where(r => ReplicaShape.Of(r) is var shape && shape.Nodes.All(holdings.ContainsKey)
                && holdings[shape.Node].Contains(shape.Key))
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
                (missing.Count > 0 ? $"; missing {string.Join("; ", missing)}" : "") +
                (state.State.ReplannedYaml is not null && state.State.Replan is { } replan ? $" ({replan.Reason})" : "");
            logger.LogInformation("plan controller: {Event}", _lastEvent);
        }
        MarkStrays(target, holdings);
        if (loads is null)
        {
            await StoreArrivalsAsync(cancellationToken);
            await UnloadStraysAsync();
            await UnloadOrphanRunsAsync(statuses.Select(s => s.Status!).ToArray());
        }
        return failure;
    }

    /// <summary>The re-planned plan while every worker it was made without is still not live; else the operator's target (a rejoin brings it back in full).</summary>
    private async Task<Plan> EffectiveTargetAsync(Plan target, string[] live)
    {
        if (state.State.ReplannedYaml is not { } yaml)
            return target;
        var without = state.State.ReplannedWithout ?? [];
        if (!without.Any(live.Contains))
            return Parse(yaml, "stored re-planned plan");
        (state.State.ReplannedYaml, state.State.ReplannedWithout, state.State.Replan) = (null, null, null);
        await state.WriteStateAsync();
        _lastEvent = $"{string.Join(",", without.Where(live.Contains))} live again: back to the target plan";
        logger.LogInformation("plan controller: {Event}", _lastEvent);
        return target;
    }

    /// <summary>
    /// Re-plans once the workers of the plans (the target and the re-planned one) that membership
    /// declared dead have all been dead for the grace period, unless a plan was already made without
    /// exactly them (or the planner failed for them: it is asked again when the set changes).
    /// </summary>
    private async Task ReplanIfDeadAsync(Plan target, string[] live, HashSet<string> declaredDead)
    {
        var replanned = state.State.ReplannedYaml is { } replannedYaml ? Parse(replannedYaml, "stored re-planned plan") : null;
        var planned = PlanRestriction.Nodes(target).ToHashSet(StringComparer.Ordinal);
        if (replanned is not null)
            planned.UnionWith(PlanRestriction.Nodes(replanned));
        var now = DateTime.UtcNow;
        var gone = planned.Where(declaredDead.Contains).Order(StringComparer.Ordinal).ToArray();
        foreach (var node in _deadSince.Keys.Except(gone).ToArray())
            _deadSince.Remove(node);
        foreach (var node in gone)
            _deadSince.TryAdd(node, now);
        if (settings.Replan is not { } replan || gone.Length == 0 || gone.Any(n => now - _deadSince[n] < replan.Grace))
            return;
        // Already made without exactly these workers, or the planner failed for them: asked again only when the set changes.
        var key = string.Join(",", gone);
        var without = state.State.ReplannedWithout ?? [];
        if ((replanned is not null && without.Order(StringComparer.Ordinal).SequenceEqual(gone)) || _replanFailedFor == key)
            return;

        var inForce = state.State.InForceYaml is { } y ? Parse(y, "stored plan in force") : null;
        var current = inForce is null ? null
            : PlanRestriction.Restrict(inForce, inForce.Replicas.Where(r => ReplicaShape.Of(r).Nodes.All(live.Contains)).Select(r => r.Id).ToHashSet(StringComparer.Ordinal), inForce.Version);
        var basis = replanned ?? target;
        var observed = _arrivals.Rates(basis.RequestTypes.Select(t => t.Name).ToArray(), now);
        var note = observed is { } o ? $"observed by the front ends over {o.Seconds:F0} s" : "declared by the plan (nothing observed yet)";
        var (plan, record, error) = await Task.Run(() => ClusterReplanner.Plan(replan, basis, current, live, gone, observed?.Rates, note));
        if (plan is null || record is null)
        {
            _replanFailedFor = key;
            _lastEvent = $"{key} dead: re-planning failed, serving the plan restricted to the replicas left: {error}";
            logger.LogWarning("plan controller: {Event}", _lastEvent);
            return;
        }
        _replanFailedFor = null;
        (state.State.ReplannedYaml, state.State.ReplannedWithout, state.State.Replan) = (ContractYaml.Write(plan), gone, record);
        await state.WriteStateAsync();
        _lastEvent = record.Reason;
        logger.LogInformation("plan controller: {Reason}; replaces {Replaced}; workload {Workload}; {Planner}", record.Reason, record.Replaced, record.Workload, record.Planner);
    }

    private void MarkStrays(Plan target, Dictionary<string, HashSet<string>> holdings)
    {
        var wanted = target.Replicas.Select(r => ReplicaShape.Of(r).Key).ToHashSet(StringComparer.Ordinal);
        var now = DateTime.UtcNow;
        Track(_outOfPlanSince, holdings.SelectMany(h => h.Value.Where(k => !wanted.Contains(k)).Select(k => $"{h.Key}|{k}")), now);
    }

    /// <summary>Notes when each of <paramref name="current"/> (node|key) was first seen, and forgets the keys no longer among them.</summary>
    private static void Track(Dictionary<string, DateTime> since, IEnumerable<string> current, DateTime now)
    {
        var keys = current.ToHashSet(StringComparer.Ordinal);
        foreach (var key in keys)
            since.TryAdd(key, now);
        foreach (var key in since.Keys.Where(k => !keys.Contains(k)).ToArray())
            since.Remove(key);
    }

    /// <summary>Removes and returns, as (node, key), the entries seen for at least the unload grace.</summary>
    private (string Node, string Key)[] TakeDue(Dictionary<string, DateTime> since, DateTime now)
    {
        var due = since.Where(kv => now - kv.Value >= settings.UnloadGrace).Select(kv => kv.Key).ToArray();
        foreach (var key in due)
            since.Remove(key);
        return due.Select(k => k.Split('|', 2) is [var node, var key] ? (node, key) : throw new InvalidOperationException($"'{k}' is not node|key")).ToArray();
    }

    private async Task UnloadStraysAsync()
    {
        foreach (var (node, key) in TakeDue(_outOfPlanSince, DateTime.UtcNow))
        {
            try
            {
                if (settings.InFlight == InFlightPolicy.Drain)
                {
                    if (await Worker(node).UnloadReplica(key))
                        _lastEvent = $"unloaded {key} from {node}";
                }
                else if (await Worker(node).RetireReplica(key, settings.FinishInPlaceMaxSteps) is { WasLoaded: true } retired)
                    _lastEvent = $"unloaded {key} from {node}: {retired.Moved} request(s) moved ({retired.MovedWithKv} with {retired.KvBytesParked} B of KV), {retired.FinishingInPlace} finishing there";
            }
            catch (Exception error)
            {
                logger.LogWarning("plan controller: unloading {Replica} on {Node} failed: {Error}", key, node, error.Message);
            }
        }
    }

    /// <summary>Writes the reports received to storage, at most every <see cref="ControllerSettings.ArrivalsStoreInterval"/> and only when new ones came; a failed write only logs (they stay in memory).</summary>
    private async Task StoreArrivalsAsync(CancellationToken cancellationToken)
    {
        var now = DateTime.UtcNow;
        if (!_arrivalsChanged || now - _arrivalsStored < settings.ArrivalsStoreInterval)
            return;
        (_arrivalsChanged, _arrivalsStored) = (false, now);
        state.State.Arrivals = _arrivals.Snapshot(now);
        try
        {
            await state.WriteStateAsync(cancellationToken);
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("plan controller: storing the arrival reports failed: {Error}", error.Message);
        }
    }

    /// <summary>
    /// Frees runs of later pipeline stages whose replica's first worker is dead or no longer holds
    /// it (that worker died, or its unload message was lost), once seen so for the unload grace.
    /// </summary>
    private async Task UnloadOrphanRunsAsync(WorkerStatus[] statuses)
    {
        var byNode = statuses.ToDictionary(s => s.Node, StringComparer.Ordinal);
        var now = DateTime.UtcNow;
        Track(_orphanSince, statuses.SelectMany(s => s.StageRuns.Where(run =>
                !byNode.TryGetValue(run.HeadNode, out var head) || !head.Replicas.Any(r => r.Key == run.ReplicaKey))
            .Select(run => $"{s.Node}|{run.RunKey}")), now);
        foreach (var (node, runKey) in TakeDue(_orphanSince, now))
        {
            try
            {
                if (await Worker(node).UnloadStages(runKey))
                    _lastEvent = $"unloaded {runKey} from {node}: the replica's first worker no longer runs it";
            }
            catch (Exception error)
            {
                logger.LogWarning("plan controller: unloading {Run} on {Node} failed: {Error}", runKey, node, error.Message);
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
