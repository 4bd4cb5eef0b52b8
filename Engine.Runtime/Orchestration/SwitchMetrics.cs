using OServe.Engine.Serving;

namespace OServe.Engine.Orchestration;

/// <summary>Running totals of plan switches, exported on /metrics next to the serving figures.</summary>
public sealed class SwitchMetrics
{
    private readonly Lock _lock = new();
    private long _applied, _rolledBack, _rejected, _bytesPeer, _bytesStorage, _bytesKv, _migrated;
    private double _lastSeconds = double.NaN;

    public long NumApplied { get { lock (_lock) return _applied; } }
    public long NumRolledBack { get { lock (_lock) return _rolledBack; } }
    public long NumRejected { get { lock (_lock) return _rejected; } }

    internal void Record(SwitchReport report)
    {
        lock (_lock)
        {
            if (report.Outcome == SwitchOutcome.Applied) _applied++; else _rolledBack++;
            _lastSeconds = report.TotalSeconds;
            _bytesPeer += report.BytesFromPeers;
            _bytesStorage += report.BytesFromStorage;
            _bytesKv += report.KvBytesMoved;
            _migrated += report.NumRequestsMigrated;
        }
    }

    internal void RecordRejected()
    {
        lock (_lock) _rejected++;
    }

    public void Write(PrometheusText text, (string Name, string Value)[] labels, int planVersion, IReadOnlyList<LiveReplica> replicas)
    {
        long applied, rolledBack, rejected, peer, storage, kv, migrated;
        double last;
        lock (_lock)
            (applied, rolledBack, rejected, peer, storage, kv, migrated, last) =
                (_applied, _rolledBack, _rejected, _bytesPeer, _bytesStorage, _bytesKv, _migrated, _lastSeconds);
        text.Family("oserve:plan_version", "gauge", "Version of the plan in force.");
        text.Sample("oserve:plan_version", labels, planVersion);
        text.Family("oserve:plan_switches_total", "counter", "Plan switches, by outcome (applied, rolled_back, rejected).");
        text.Sample("oserve:plan_switches_total", [.. labels, ("outcome", "applied")], applied);
        text.Sample("oserve:plan_switches_total", [.. labels, ("outcome", "rolled_back")], rolledBack);
        text.Sample("oserve:plan_switches_total", [.. labels, ("outcome", "rejected")], rejected);
        text.Family("oserve:plan_last_switch_seconds", "gauge", "Wall time of the last switch (applied or rolled back); NaN before the first.");
        text.Sample("oserve:plan_last_switch_seconds", labels, last);
        text.Family("oserve:plan_switch_bytes_total", "counter", "Bytes moved by switches: weights from peer devices or storage, KV cache of moved requests.");
        text.Sample("oserve:plan_switch_bytes_total", [.. labels, ("source", "peer")], peer);
        text.Sample("oserve:plan_switch_bytes_total", [.. labels, ("source", "storage")], storage);
        text.Sample("oserve:plan_switch_bytes_total", [.. labels, ("source", "kv")], kv);
        text.Family("oserve:plan_requests_migrated_total", "counter", "Requests moved with their KV cache to another replica by a switch.");
        text.Sample("oserve:plan_requests_migrated_total", labels, migrated);
        text.Family("oserve:replica_requests_outstanding", "gauge", "Requests routed to a replica and not finished.");
        foreach (var r in replicas)
            text.Sample("oserve:replica_requests_outstanding", [.. labels, ("replica", r.Id), ("config", r.Spec.ConfigKey)], r.Outstanding);
    }
}
