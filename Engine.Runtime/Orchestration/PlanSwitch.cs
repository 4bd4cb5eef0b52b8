using System.Diagnostics;
using OServe.Contracts;
using OServe.Engine.Execution;

namespace OServe.Engine.Orchestration;

/// <summary>
/// One live switch, make-before-break:
/// 1. match: a replica of the new plan with the same devices, tp, pp and GPU type as a running one
///    keeps that one (it never stops serving, it only takes the new id);
/// 2. build: every other new replica gets each shard from a pool device that holds it (a running
///    replica's, same device or node first) and only the rest from storage, while the old plan
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

        var built = new List<LiveReplica>();
        try
        {
            for (int i = 0; i < next.Replicas.Count; i++)
            {
                if (chosen[i] is not null) continue;
                cancellationToken.ThrowIfCancellationRequested();
                var spec = next.Replicas[i];
                bool copyFromPeers = options.Weights == WeightSourcePolicy.Peer;
                // The old replicas stay alive (and serving) until this returns: their shards are the peers' bytes.
                var (replica, transfers, transfer) = await Task.Run(() => runtime.Builder.Build(spec, copyFromPeers, runtime.Options.Transfer), cancellationToken)
                    .ConfigureAwait(false);
                built.Add(replica);
                chosen[i] = replica;
                _events.AddRange(transfers);
                if (runtime.Options.WarmUpPromptTokens > 0)
                {
                    // Before the commit: nothing is routed to the replica until it is warm.
                    double warm = await runtime.Builder.WarmUpAsync(replica, runtime.Options.WarmUpPromptTokens, cancellationToken).ConfigureAwait(false);
                    _events.Add(new SwitchEvent(SwitchStepKind.Start, spec.Id, $"warmed up on a {runtime.Options.WarmUpPromptTokens}-token prompt before taking traffic", 0, warm));
                }
                _bytesPeer += transfer.BytesFromPeers + transfer.BytesFromSameDevice;
                _bytesStorage += transfer.BytesFromStorage;
            }
        }
        catch (Exception error)
        {
            // Nothing of the new plan was ever routed to: stopping what was built is the whole rollback.
            foreach (var replica in built)
                await replica.StopAsync().ConfigureAwait(false);
            _events.Add(new SwitchEvent(SwitchStepKind.Stop, "*", $"rolled back: {built.Count} new replica(s) discarded", 0, 0));
            return Report(SwitchOutcome.RolledBack, from.Plan.Version, numKept, 0, 0, total, total.Elapsed.TotalSeconds, 0, 0, 0, 0,
                error is OperationCanceledException ? "the switch was cancelled" : error.Message);
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
        int migrated = 0, drained = 0;
        long kvBytes = 0;
        if (options.InFlight == InFlightPolicy.Migrate)
        {
            var watch = Stopwatch.StartNew();
            var moving = await old.Engine.DetachAllAsync(withKv: true).ConfigureAwait(false);
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
        else
        {
            drained = old.Outstanding;
            lock (_events)
                _events.Add(new SwitchEvent(SwitchStepKind.Drain, old.Id, $"{drained} request(s) finish here", 0, 0));
        }
        var stop = Stopwatch.StartNew();
        await old.StopAsync().ConfigureAwait(false); // serves whatever was admitted after the routing changed
        runtime.Retired(old);
        lock (_events)
            _events.Add(new SwitchEvent(SwitchStepKind.Stop, old.Id, string.Join(",", old.Spec.Devices), 0, stop.Elapsed.TotalSeconds));
        return (migrated, kvBytes, drained);
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
