using OServe.Contracts;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Simulation;

/// <summary>
/// Carries out a plan's switch steps in the simulation. Keep: the replica serves on. Drain: it
/// takes nothing new; its queued requests go to the new plan at once, its running ones finish there.
/// MoveKv: running requests with more than DrainMaxRemainingTokens left leave at the next step
/// boundary and their KV cache travels to a new-plan replica (link time of its bytes). Stop: the
/// replica releases its devices once it holds no work. CopyShard/LoadShard: a new replica's shards
/// arrive over a device link or from node storage; each link and each node's storage is a queue, and
/// copies onto devices still held by a draining replica begin when it stops. Start: the new replica
/// serves from the moment its last shard is in. Nothing is dropped: every request ends somewhere.
/// </summary>
public sealed class SwitchExecutor(Simulation sim)
{
    private readonly Dictionary<string, double> _linkFreeAt = new(StringComparer.Ordinal);
    private readonly Dictionary<string, double> _storageFreeAt = new(StringComparer.Ordinal);
    private readonly Dictionary<SimReplica, List<SwitchStep>> _pendingShards = [];
    private readonly Dictionary<SimReplica, SwitchRecord> _recordOf = [];

    public void Begin(int planIndex, Plan plan, List<SimEvent> next)
    {
        var old = sim.Current;
        var steps = plan.Switch?.Steps ?? [];
        var keep = new HashSet<string>(StringComparer.Ordinal);
        var drain = new HashSet<string>(StringComparer.Ordinal);
        var moveKv = new HashSet<string>(StringComparer.Ordinal);
        var start = new HashSet<string>(StringComparer.Ordinal);
        var shards = new Dictionary<string, List<SwitchStep>>(StringComparer.Ordinal);
        foreach (var step in steps)
        {
            switch (step.Kind)
            {
                case SwitchStepKind.Keep: keep.Add(step.Replica); break;
                case SwitchStepKind.Drain or SwitchStepKind.Stop: drain.Add(step.Replica); break;
                case SwitchStepKind.MoveKv: moveKv.Add(step.Replica); drain.Add(step.Replica); break;
                case SwitchStepKind.Start: start.Add(step.Replica); break;
                case SwitchStepKind.CopyShard or SwitchStepKind.LoadShard:
                    if (!shards.TryGetValue(step.Replica, out var list)) shards[step.Replica] = list = [];
                    list.Add(step);
                    break;
            }
        }
        var planned = plan.Replicas.ToDictionary(r => r.Id, StringComparer.Ordinal);
        // Without a switch section, a plan may only re-route the same replicas.
        if (plan.Switch is null)
            foreach (var (id, replica) in old)
                if (planned.TryGetValue(id, out var spec) && SameShape(spec, replica.Spec)) keep.Add(id);
                else drain.Add(id);

        var replicas = new Dictionary<string, SimReplica>(StringComparer.Ordinal);
        var removed = new List<SimReplica>();
        foreach (var (id, replica) in old)
        {
            if (keep.Contains(id) && !drain.Contains(id) && planned.TryGetValue(id, out var spec) && SameShape(spec, replica.Spec))
                replicas[id] = replica;
            else
                removed.Add(replica);
        }
        var fresh = new List<SimReplica>();
        foreach (var spec in plan.Replicas)
        {
            if (replicas.ContainsKey(spec.Id)) continue;
            if (!start.Contains(spec.Id) && plan.Switch is not null)
                throw new SimulationException($"plan v{plan.Version}: replica '{spec.Id}' is new but its switch has no start step for it");
            if (plan.Switch is null)
                throw new SimulationException($"plan v{plan.Version} changes replica '{spec.Id}' but has no switch steps; plan the switch first");
            var replica = sim.Create(spec, ReplicaStatus.Building);
            replicas[spec.Id] = replica;
            fresh.Add(replica);
            _pendingShards[replica] = shards.TryGetValue(spec.Id, out var list) ? list : [];
        }
        var record = new SwitchRecord(planIndex, sim.Now, replicas.Count - fresh.Count, removed.Count, fresh.Count);
        sim.SwitchLog.Add(record);
        sim.SetPlan(plan, replicas);

        // New replicas wait for every removed one that holds any of their devices.
        foreach (var replica in fresh)
        {
            _recordOf[replica] = record;
            var devices = replica.Spec.Devices.ToHashSet(StringComparer.Ordinal);
            foreach (var gone in removed)
                if (gone.Status != ReplicaStatus.Stopped && gone.Spec.Devices.Any(devices.Contains))
                {
                    replica.NumBlockers++;
                    gone.Blocks.Add(replica);
                }
        }
        foreach (var gone in removed)
        {
            gone.MigrateLongRequests = moveKv.Contains(gone.Id) || gone.Status == ReplicaStatus.Building;
            record.NumRequeued += StartDrain(gone, next);
        }
        foreach (var replica in fresh)
            if (replica.NumBlockers == 0) LoadShards(replica, next);
        if (fresh.Count == 0) record.EndS = sim.Now;
    }

    /// <summary>After a draining replica's step: hand off long requests, stop when empty, else keep stepping.</summary>
    public void ContinueDrain(SimReplica replica, List<SimEvent> next)
    {
        if (replica.MigrateLongRequests)
            MigrateRunning(replica, next);
        if (!replica.Scheduler.HasUnfinishedSequences && !replica.IsStepping)
            Stop(replica, next);
        else
            sim.Poke(replica, next);
    }

    /// <summary>Sends a detached request, with its KV cache, to the replica the current plan routes it to.</summary>
    public void Migrate(SimReplica from, Sequence seq, List<SimEvent> next)
    {
        var target = sim.Dispatcher.Route(seq.NumPromptTokens, seq.Sampling.MaxTokens);
        long bytes = (long)seq.NumComputedTokens * (sim.Setup.Switching?.KvBytesPerToken ?? 0);
        double seconds = sim.Setup.Switching?.TransferSeconds(from.Spec.Devices[0], target.Spec.Devices[0], bytes) ?? 0;
        target.NumIncoming++;
        sim.Metrics.OnMigration(seq);
        var record = sim.SwitchLog[^1];
        record.NumKvMoves++;
        record.KvBytesMoved += bytes;
        next.Add(new KvTransferDoneEvent(sim.Now + seconds, target, seq));
    }

    private int StartDrain(SimReplica replica, List<SimEvent> next)
    {
        bool wasBuilding = replica.Status == ReplicaStatus.Building;
        replica.Status = ReplicaStatus.Draining;
        // Queued requests hold no KV: they go to the new plan's replicas now.
        var waiting = replica.Scheduler.Waiting.ToList();
        foreach (var seq in waiting)
        {
            replica.Scheduler.Detach(seq);
            var target = sim.Dispatcher.Route(seq.NumPromptTokens, seq.Sampling.MaxTokens);
            target.Scheduler.Adopt(seq);
            sim.Poke(target, next);
        }
        if (wasBuilding)
            _pendingShards.Remove(replica);
        ContinueDrain(replica, next);
        return waiting.Count;
    }

    private void MigrateRunning(SimReplica replica, List<SimEvent> next)
    {
        if (replica.IsStepping) return;
        // A replica that never ran (cancelled while building) has no weights: everything leaves.
        int limit = replica.NumSteps > 0 ? sim.Setup.DrainMaxRemainingTokens : -1;
        var running = replica.Scheduler.Running;
        List<Sequence>? leaving = null;
        for (int i = 0; i < running.Count; i++)
            if (running[i].Sampling.MaxTokens - running[i].NumOutputTokens > limit)
                (leaving ??= []).Add(running[i]);
        if (leaving is null) return;
        foreach (var seq in leaving)
        {
            replica.Scheduler.Detach(seq);
            Migrate(replica, seq, next);
        }
    }

    private void Stop(SimReplica replica, List<SimEvent> next)
    {
        replica.Status = ReplicaStatus.Stopped;
        replica.StoppedAt = sim.Now;
        foreach (var blocked in replica.Blocks)
            if (--blocked.NumBlockers == 0 && blocked.Status == ReplicaStatus.Building)
                LoadShards(blocked, next);
        replica.Blocks.Clear();
    }

    /// <summary>Queues the replica's shard transfers on their links from now; it is ready when the last lands.</summary>
    private void LoadShards(SimReplica replica, List<SimEvent> next)
    {
        if (!_pendingShards.Remove(replica, out var steps)) return;
        double done = sim.Now;
        var costs = sim.Setup.Switching;
        foreach (var step in steps)
        {
            bool fromStorage = step.Kind == SwitchStepKind.LoadShard || step.Source is null or "storage";
            string device = step.Device ?? replica.Spec.Devices[0];
            double seconds = step.EstSeconds > 0 ? step.EstSeconds
                : costs is null ? 0
                : fromStorage ? costs.StorageSeconds(step.Bytes)
                : costs.TransferSeconds(step.Source!, device, step.Bytes);
            if (seconds <= 0) continue;
            double begin;
            if (fromStorage)
            {
                string node = costs?.NodeName(device) ?? device;
                begin = Math.Max(sim.Now, _storageFreeAt.GetValueOrDefault(node));
                _storageFreeAt[node] = begin + seconds;
            }
            else
            {
                begin = Math.Max(sim.Now, Math.Max(_linkFreeAt.GetValueOrDefault(step.Source!), _linkFreeAt.GetValueOrDefault(device)));
                _linkFreeAt[step.Source!] = begin + seconds;
                _linkFreeAt[device] = begin + seconds;
            }
            done = Math.Max(done, begin + seconds);
        }
        replica.ShardsDoneAt = done;
        if (_recordOf.Remove(replica, out var record))
            record.EndS = double.IsNaN(record.EndS) ? done : Math.Max(record.EndS, done);
        next.Add(new ReplicaReadyEvent(done, replica));
    }

    private static bool SameShape(ReplicaSpec a, ReplicaSpec b) =>
        a.Tp == b.Tp && a.Pp == b.Pp && a.Devices.SequenceEqual(b.Devices, StringComparer.Ordinal);
}
