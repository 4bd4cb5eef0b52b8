using System.Diagnostics;
using OServe.Contracts;
using OServe.Engine.Execution;

namespace OServe.Engine.Orchestration;

/// <summary>
/// One live switch, make-before-break:
/// 1. match: a replica of the new plan with the same devices, tp, pp and GPU type as a running one
///    keeps that one (it never stops serving, it only takes the new id);
/// 2. build: every other new replica (all of them at once, each on its own devices) gets each
///    shard from a pool device that holds it (a running replica's, same device or node first)
///    and only the rest from storage, while the old plan
///    serves (the old replicas are disposed only after the build returns); a failure
///    here disposes what was built and leaves the old plan in force (rollback); with
///    <see cref="PlanRuntimeOptions.WarmUpPromptTokens"/> each built replica serves a warm-up prompt
///    of its own before the commit;
/// 3. commit: the new routing is installed atomically, so new requests go to the new plan at once;
/// 4. retire: each replica that is not in the new plan hands its requests in flight, with their KV
///    cache, to the new plan's replicas (or drains them), then stops and frees its memory.
/// A request's event stream is a channel that moves with it, so a moved request's client sees one
/// uninterrupted stream; no request is admitted twice or left behind.
/// </summary>
internal sealed class PlanSwitch(PlanRuntime runtime, PlanRuntime.Deployment from, Plan next, SwitchOptions options)
{
    private readonly List<SwitchEvent> _events = [];
    private long _bytesPeer, _bytesStorage;

    public async Task<SwitchReport> RunAsync(CancellationToken cancellationToken)
    {
        var total = Stopwatch.StartNew();
        var leaving = from.Replicas.ToList();
        var chosen = new LiveReplica?[next.Replicas.Count];
        for (int i = 0; i < next.Replicas.Count; i++)
        {
            var spec = next.Replicas[i];
            var same = leaving.FirstOrDefault(r => r.SameShape(spec));
            if (same is null) continue;
            leaving.Remove(same);
            chosen[i] = same;
            _events.Add(new SwitchEvent(SwitchStepKind.Keep, spec.Id, same.Id == spec.Id ? "unchanged" : $"unchanged (was {same.Id})", 0, 0));
        }
        int numKept = chosen.Count(c => c is not null);

        // New replicas are built at the same time, each on its own devices (a plan's replicas never
        // share one), as the planner's switch schedule assumes copies on different links overlap.
        bool copyFromPeers = options.Weights == WeightSourcePolicy.Peer;
        var missing = Enumerable.Range(0, next.Replicas.Count).Where(i => chosen[i] is null).ToArray();
        var builds = missing.Select(i => Task.Run(() => BuildOneAsync(next.Replicas[i], copyFromPeers, cancellationToken), cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(builds).ConfigureAwait(false);
        }
        catch (Exception error)
        {
            // Every build has finished (WhenAll waits for all). Nothing of the new plan was ever
            // routed to: stopping what was built is the whole rollback.
            var discarded = builds.Where(b => b.IsCompletedSuccessfully).Select(b => b.Result.Replica).ToList();
            foreach (var replica in discarded)
                await replica.StopAsync().ConfigureAwait(false);
            _events.Add(new SwitchEvent(SwitchStepKind.Stop, "*", $"rolled back: {discarded.Count} new replica(s) discarded", 0, 0));
            var first = builds.Select(b => b.Exception?.InnerException).FirstOrDefault(e => e is not null and not OperationCanceledException) ?? error;
            return Report(SwitchOutcome.RolledBack, from.Plan.Version, numKept, 0, 0, total, total.Elapsed.TotalSeconds, 0, 0, 0, 0,
                first is OperationCanceledException ? "the switch was cancelled" : first.Message);
        }
        var built = new List<LiveReplica>();
        for (int k = 0; k < missing.Length; k++)
        {
            var (replica, events, transfer) = builds[k].Result;
            chosen[missing[k]] = replica;
            built.Add(replica);
            _events.AddRange(events);
            _bytesPeer += transfer.BytesFromPeers + transfer.BytesFromSameDevice;
            _bytesStorage += transfer.BytesFromStorage;
        }
        double buildSeconds = total.Elapsed.TotalSeconds;

        for (int i = 0; i < next.Replicas.Count; i++)
            chosen[i]!.Spec = next.Replicas[i];
        runtime.Install(next, chosen!);
        foreach (var replica in built)
            _events.Add(new SwitchEvent(SwitchStepKind.Start, replica.Id, string.Join(",", replica.Spec.Devices), 0, 0));
        foreach (var replica in leaving)
            replica.IsRetired = true;

        var retire = Stopwatch.StartNew();
        var results = await Task.WhenAll(leaving.Select(RetireAsync)).ConfigureAwait(false);
        return Report(SwitchOutcome.Applied, next.Version, numKept, built.Count, leaving.Count, total, buildSeconds, retire.Elapsed.TotalSeconds,
            results.Sum(r => r.Migrated), results.Sum(r => r.KvBytes), results.Sum(r => r.Drained), null);
    }

    private async Task<(int Migrated, long KvBytes, int Drained)> RetireAsync(LiveReplica old)
    {
        int migrated = 0;
        long kvBytes = 0;
        bool migrate = options.InFlight == InFlightPolicy.Migrate;
        if (migrate)
        {
            var watch = Stopwatch.StartNew();
            var moving = await old.Engine.DetachAllAsync(withKv: true, options.FinishInPlaceMaxSteps).ConfigureAwait(false);
            double detachSeconds = watch.Elapsed.TotalSeconds;
            var routing = new RoutingTarget(runtime);
            foreach (var group in moving.GroupBy(m => routing.Pick(m.Request)))
            {
                var target = group.Key;
                var requests = group.ToList();
                foreach (var m in requests)
                    runtime.Moved(m.RequestId, target); // before adopting, so a quick finish is counted on the target
                long bytes = requests.Sum(m => m.KvBytes);
                var adopt = Stopwatch.StartNew();
                await target.Engine.AdoptAsync(requests).ConfigureAwait(false);
                lock (_events)
                    _events.Add(new SwitchEvent(SwitchStepKind.MoveKv, target.Id,
                        $"{requests.Count} request(s) from {old.Id} ({requests.Sum(m => m.NumKvTokens)} KV tokens; {requests.Count(m => m.NumKvTokens == 0)} recompute)",
                        bytes, detachSeconds + adopt.Elapsed.TotalSeconds));
                migrated += requests.Count;
                kvBytes += bytes;
            }
        }
        // What did not move finishes here: everything under Drain; under Migrate, those with few steps left.
        int drained = old.Outstanding;
        if (!migrate || drained > 0)
            lock (_events)
                _events.Add(new SwitchEvent(SwitchStepKind.Drain, old.Id,
                    $"{drained} request(s) finish here" + (migrate ? $" (at most {options.FinishInPlaceMaxSteps} steps left)" : ""), 0, 0));
        var stop = Stopwatch.StartNew();
        await old.StopAsync().ConfigureAwait(false); // serves whatever was admitted after the routing changed
        runtime.Retired(old);
        lock (_events)
            _events.Add(new SwitchEvent(SwitchStepKind.Stop, old.Id, string.Join(",", old.Spec.Devices), 0, stop.Elapsed.TotalSeconds));
        return (migrated, kvBytes, drained);
    }

    /// <summary>One new replica: its shards from the devices that hold them (the old replicas stay alive and serving meanwhile), then its warm-up.</summary>
    private async Task<(LiveReplica Replica, List<SwitchEvent> Events, OServe.Models.Parallelism.TransferReport Transfer)> BuildOneAsync(
        ReplicaSpec spec, bool copyFromPeers, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var (replica, transfers, transfer) = runtime.Builder.Build(spec, copyFromPeers, runtime.Options.Transfer);
        var events = new List<SwitchEvent>(transfers);
        if (runtime.Options.WarmUpPromptTokens > 0)
        {
            try
            {
                // Before the commit: nothing is routed to the replica until it is warm.
                double warm = await runtime.Builder.WarmUpAsync(replica, runtime.Options.WarmUpPromptTokens, cancellationToken).ConfigureAwait(false);
                events.Add(new SwitchEvent(SwitchStepKind.Start, spec.Id, $"warmed up on a {runtime.Options.WarmUpPromptTokens}-token prompt before taking traffic", 0, warm));
            }
            catch
            {
                await replica.StopAsync().ConfigureAwait(false);
                throw;
            }
        }
        return (replica, events, transfer);
    }

    private SwitchReport Report(SwitchOutcome outcome, int toVersion, int kept, int started, int stopped, Stopwatch total,
        double buildSeconds, double retireSeconds, int migrated, long kvBytes, int drained, string? error) => new()
    {
        Outcome = outcome,
        FromVersion = from.Plan.Version,
        ToVersion = toVersion,
        NumKept = kept,
        NumStarted = started,
        NumStopped = stopped,
        BytesFromPeers = _bytesPeer,
        BytesFromStorage = _bytesStorage,
        KvBytesMoved = kvBytes,
        NumRequestsMigrated = migrated,
        NumRequestsDrained = drained,
        BuildSeconds = buildSeconds,
        RetireSeconds = retireSeconds,
        TotalSeconds = total.Elapsed.TotalSeconds,
        Events = _events.ToArray(),
        Error = error,
    };

    /// <summary>Where a moved request goes: the new plan's routing for its type, load included.</summary>
    private sealed class RoutingTarget(PlanRuntime runtime)
    {
        public LiveReplica Pick(GenerationRequest request) =>
            runtime.RouteFor(request.PromptTokens.Count, request.Sampling.MaxTokens);
    }
}
