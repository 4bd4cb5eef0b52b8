using OServe.Contracts;

namespace OServe.Engine.Distributed;

/// <summary>
/// The plan that can be served when only some of a plan's replicas are up (a worker died, or
/// a rejoined one is still loading): the target's replicas that are up, its routing kept among
/// them; a request type whose every replica is down is spread over all the replicas left, in
/// proportion to the rate each already takes, so every type is still served.
/// </summary>
public static class PlanRestriction
{
    /// <summary>Null when none of the plan's replicas is up.</summary>
    public static Plan? Restrict(Plan target, IReadOnlySet<string> upReplicaIds, int version)
    {
        var replicas = target.Replicas.Where(r => upReplicaIds.Contains(r.Id)).ToList();
        if (replicas.Count == 0)
            return null;
        var ids = replicas.Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
        // What each surviving replica already takes, summed over types: the share it gets of an orphaned type.
        var load = replicas.ToDictionary(r => r.Id, _ => 0.0, StringComparer.Ordinal);
        foreach (var entry in target.Routing)
            foreach (var (id, w) in entry.Weights)
                if (ids.Contains(id) && w > 0)
                    load[id] += w;
        var fallback = load.Values.Sum() > 0
            ? load.Where(kv => kv.Value > 0).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal)
            : replicas.ToDictionary(r => r.Id, _ => 1.0, StringComparer.Ordinal);

        var routing = new List<RoutingEntry>();
        foreach (var type in target.RequestTypes)
        {
            var entry = target.Routing.FirstOrDefault(e => e.Type == type.Name);
            var kept = entry?.Weights.Where(kv => ids.Contains(kv.Key) && kv.Value > 0)
                .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal) ?? [];
            routing.Add(new RoutingEntry { Type = type.Name, Weights = kept.Count > 0 ? kept : fallback });
        }
        return target with { Version = version, Replicas = replicas, Routing = routing, Switch = null };
    }

    /// <summary>Same replicas (ids and shapes) and the same routing weights: nothing for the front ends to change.</summary>
    public static bool SameDeployment(Plan a, Plan b) =>
        a.Replicas.Select(Key).Order(StringComparer.Ordinal).SequenceEqual(b.Replicas.Select(Key).Order(StringComparer.Ordinal))
        && a.Routing.Select(RoutingKey).Order(StringComparer.Ordinal).SequenceEqual(b.Routing.Select(RoutingKey).Order(StringComparer.Ordinal));

    private static string Key(ReplicaSpec r) => $"{r.Id}={ReplicaShape.Of(r).Key}";

    private static string RoutingKey(RoutingEntry e) =>
        e.Type + ":" + string.Join(",", e.Weights.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value:R}"));

    /// <summary>The nodes a plan's replicas live on.</summary>
    public static IReadOnlySet<string> Nodes(Plan plan) =>
        plan.Replicas.SelectMany(r => ReplicaShape.Of(r).Nodes).ToHashSet(StringComparer.Ordinal);
}
