using OServe.Engine.Serving;

namespace OServe.Engine.Distributed;

/// <summary>The front end's figures of the cluster for GET /metrics: plan epoch, workers, replicas, broken streams and resumes.</summary>
public sealed class ClusterCounters
{
    private readonly PrometheusHistogram _resumeSeconds = new("oserve:cluster_resume_seconds",
        "Time from a request's stream breaking to its next token from another replica (re-prefill included).",
        [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60]);
    private readonly PrometheusHistogram _moveSeconds = new("oserve:cluster_move_seconds",
        "Time from a request being moved out of a retiring replica by a switch to its next token on the replica it went to (the KV fetch included).",
        [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10]);
    private long _numBreaks, _numResumed, _numMoved, _numMovedWithKv, _numMovedOn, _promptTokens, _generatedTokens;
    private double _maxResumeSeconds, _maxMoveSeconds;
    private readonly Lock _lock = new();

    public long NumBreaks => Interlocked.Read(ref _numBreaks);
    public long NumResumed => Interlocked.Read(ref _numResumed);

    /// <summary>Streams a switch moved out of a retiring replica (each request once per move), how many of them left KV entries to continue from, and how many produced a token again.</summary>
    public long NumMoved => Interlocked.Read(ref _numMoved);
    public long NumMovedWithKv => Interlocked.Read(ref _numMovedWithKv);
    public long NumMovedOn => Interlocked.Read(ref _numMovedOn);
    public long PromptTokens => Interlocked.Read(ref _promptTokens);
    public long GeneratedTokens => Interlocked.Read(ref _generatedTokens);

    /// <summary>The longest a request waited between its stream breaking and its next token.</summary>
    public double MaxResumeSeconds { get { lock (_lock) return _maxResumeSeconds; } }

    /// <summary>The longest a moved request waited between leaving its retiring replica and its next token.</summary>
    public double MaxMoveSeconds { get { lock (_lock) return _maxMoveSeconds; } }

    internal void CountBreak() => Interlocked.Increment(ref _numBreaks);

    internal void CountToken(int promptTokensOfFirst)
    {
        Interlocked.Increment(ref _generatedTokens);
        if (promptTokensOfFirst > 0)
            Interlocked.Add(ref _promptTokens, promptTokensOfFirst);
    }

    internal void CountMoved(bool withKv)
    {
        Interlocked.Increment(ref _numMoved);
        if (withKv)
            Interlocked.Increment(ref _numMovedWithKv);
    }

    internal void ObserveResumed(TimeSpan waited, bool afterMove)
    {
        if (afterMove)
        {
            Interlocked.Increment(ref _numMovedOn);
            _moveSeconds.Observe(waited.TotalSeconds);
            lock (_lock)
                _maxMoveSeconds = Math.Max(_maxMoveSeconds, waited.TotalSeconds);
            return;
        }
        Interlocked.Increment(ref _numResumed);
        _resumeSeconds.Observe(waited.TotalSeconds);
        lock (_lock)
            _maxResumeSeconds = Math.Max(_maxResumeSeconds, waited.TotalSeconds);
    }

    internal void Write(PrometheusText text, (string Name, string Value)[] labels, ClusterPlanView view, RemoteDeployment? deployment, IReadOnlyList<WorkerStatus> workers)
    {
        text.Family("oserve:cluster_plan_epoch", "gauge", "Epoch of the plan in force on the cluster (bumped at each change, a worker's death included).");
        text.Sample("oserve:cluster_plan_epoch", labels, view.Epoch);
        text.Family("oserve:cluster_live_workers", "gauge", "Workers Orleans membership holds active, as the controller last saw them.");
        text.Sample("oserve:cluster_live_workers", labels, view.LiveNodes.Length);
        text.Family("oserve:cluster_missing_replicas", "gauge", "Replicas of the target plan not in force (their worker is down or still loading).");
        text.Sample("oserve:cluster_missing_replicas", labels, view.MissingReplicas.Length);
        text.Family("oserve:cluster_stream_breaks_total", "counter", "Streams from a worker that broke (worker died, replica unloaded) and were resumed elsewhere.");
        text.Sample("oserve:cluster_stream_breaks_total", labels, NumBreaks);
        text.Family("oserve:cluster_requests_resumed_total", "counter", "Requests that produced a token again after their stream broke.");
        text.Sample("oserve:cluster_requests_resumed_total", labels, NumResumed);
        _resumeSeconds.Write(text, labels);
        text.Family("oserve:cluster_requests_moved_total", "counter", "Requests a switch moved out of a retiring replica to another (by whether their KV entries went with them).");
        text.Sample("oserve:cluster_requests_moved_total", [.. labels, ("kv", "true")], NumMovedWithKv);
        text.Sample("oserve:cluster_requests_moved_total", [.. labels, ("kv", "false")], NumMoved - NumMovedWithKv);
        _moveSeconds.Write(text, labels);
        if (deployment is not null)
        {
            text.Family("oserve:cluster_replica_outstanding", "gauge", "Requests the front end has on each replica of the plan in force.");
            foreach (var r in deployment.Replicas)
                text.Sample("oserve:cluster_replica_outstanding", [.. labels, ("replica", r.Id), ("node", r.Node)], r.Outstanding);
        }
        text.Family("oserve:cluster_worker_weight_bytes_received_total", "counter", "Weight bytes a worker received from peer workers (hot copies across nodes).");
        foreach (var w in workers)
            text.Sample("oserve:cluster_worker_weight_bytes_received_total", [.. labels, ("node", w.Node)], w.WeightBytesReceived);
        text.Family("oserve:cluster_worker_kv_bytes_received_total", "counter", "KV bytes of moved requests a worker fetched from the worker they left.");
        foreach (var w in workers)
            text.Sample("oserve:cluster_worker_kv_bytes_received_total", [.. labels, ("node", w.Node)], w.KvBytesReceived);
    }
}
