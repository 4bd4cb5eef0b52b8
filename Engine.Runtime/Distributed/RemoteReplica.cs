using OServe.Contracts;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Distributed;

/// <summary>
/// A replica of the plan in force as the front end routes to it: on which worker, under which key,
/// how many requests it holds now (<see cref="Outstanding"/>, read lock-free by the router), and
/// whether a stream from it just failed (<see cref="IsSuspect"/>: avoided until Orleans membership and
/// the controller catch up, or the suspicion expires).
/// </summary>
public sealed class RemoteReplica(string id, ReplicaShape shape)
{
    private int _outstanding;
    private long _suspectUntilTicks;

    public string Id { get; } = id;
    public ReplicaShape Shape { get; } = shape;
    public string Node => Shape.Node;
    public string Key => Shape.Key;
    public int Outstanding => Volatile.Read(ref _outstanding);
    public bool IsSuspect => DateTime.UtcNow.Ticks < Interlocked.Read(ref _suspectUntilTicks);

    internal void AddOutstanding(int delta) => Interlocked.Add(ref _outstanding, delta);
    internal void MarkSuspect(TimeSpan howLong) => Interlocked.Exchange(ref _suspectUntilTicks, (DateTime.UtcNow + howLong).Ticks);

    public override string ToString() => $"{Id} ({Key} on {Node})";
}

/// <summary>One epoch of the plan in force, with its replicas and routing (immutable; a new epoch is a new object).</summary>
public sealed record RemoteDeployment(int Epoch, Plan Plan, IReadOnlyList<RemoteReplica> Replicas, RoutingPolicy<RemoteReplica> Routing)
{
    /// <summary>
    /// Builds the deployment of <paramref name="plan"/>, reusing the replica objects of
    /// <paramref name="previous"/> that keep their key and id, so outstanding counts carry over.
    /// </summary>
    public static RemoteDeployment Of(int epoch, Plan plan, RemoteDeployment? previous)
    {
        var old = previous?.Replicas.ToDictionary(r => (r.Id, r.Key)) ?? [];
        var replicas = plan.Replicas.Select(spec =>
        {
            var shape = ReplicaShape.Of(spec);
            return old.TryGetValue((spec.Id, shape.Key), out var kept) ? kept : new RemoteReplica(spec.Id, shape);
        }).ToArray();
        var byId = replicas.ToDictionary(r => r.Id, StringComparer.Ordinal);
        return new RemoteDeployment(epoch, plan, replicas, new RoutingPolicy<RemoteReplica>(plan, id => byId[id], r => r.Outstanding));
    }
}
