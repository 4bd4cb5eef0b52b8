using OServe.Contracts;

namespace OServe.Engine.Scheduling;

/// <summary>
/// The one routing rule, shared by the simulator's dispatcher and the real multi-replica engine.
/// A request is typed by the plan's nearest request type (log input, log output length, as the
/// planner's k-means types), then sent to the replica with the fewest outstanding requests per unit
/// of routing weight among those the type is routed to (a weight is the rate the planner routed
/// there, so load / weight estimates the time to clear the backlog, by Little's law). A type the
/// plan does not route goes to the least-loaded replica. Ties go to the replica listed first, so
/// routing is deterministic. Immutable: a new plan gets a new policy.
/// </summary>
/// <typeparam name="TReplica">Whatever stands for a replica (a simulated one, a live engine).</typeparam>
public sealed class RoutingPolicy<TReplica> where TReplica : class
{
    private readonly double[] _typeLogIn;
    private readonly double[] _typeLogOut;
    private readonly TReplica[][] _targets;
    private readonly double[][] _weights;
    private readonly TReplica[] _all;
    private readonly Func<TReplica, int> _load;

    /// <param name="replicaOf">The replica standing for a plan replica id.</param>
    /// <param name="load">Outstanding requests of a replica, read at each routing decision.</param>
    public RoutingPolicy(Plan plan, Func<string, TReplica> replicaOf, Func<TReplica, int> load)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(replicaOf);
        _load = load ?? throw new ArgumentNullException(nameof(load));
        var types = plan.RequestTypes;
        _typeLogIn = types.Select(t => Math.Log(Math.Max(1, t.InputTokens))).ToArray();
        _typeLogOut = types.Select(t => Math.Log(Math.Max(1, t.OutputTokens))).ToArray();
        _targets = new TReplica[types.Count][];
        _weights = new double[types.Count][];
        for (int j = 0; j < types.Count; j++)
        {
            var entry = plan.Routing.FirstOrDefault(e => e.Type == types[j].Name);
            // Plan order, not dictionary order, decides ties.
            var chosen = plan.Replicas.Where(r => entry is not null && entry.Weights.TryGetValue(r.Id, out var w) && w > 0).ToList();
            _targets[j] = chosen.Select(r => replicaOf(r.Id)).ToArray();
            _weights[j] = chosen.Select(r => entry!.Weights[r.Id]).ToArray();
        }
        _all = plan.Replicas.Select(r => replicaOf(r.Id)).ToArray();
        if (_all.Length == 0)
            throw new ArgumentException($"plan v{plan.Version} has no replicas: requests would have nowhere to go");
        TypeNames = types.Select(t => t.Name).ToArray();
    }

    public int NumTypes => _typeLogIn.Length;

    /// <summary>The plan's request type names, by type index.</summary>
    public IReadOnlyList<string> TypeNames { get; }

    /// <summary>Every replica of the plan, in plan order.</summary>
    public IReadOnlyList<TReplica> Replicas => _all;

    /// <summary>The plan's request type nearest to (input, output) tokens; -1 when the plan has none.</summary>
    public int Classify(int inputTokens, int outputTokens)
    {
        double li = Math.Log(Math.Max(1, inputTokens)), lo = Math.Log(Math.Max(1, outputTokens));
        int best = -1;
        double bestD = double.MaxValue;
        for (int j = 0; j < _typeLogIn.Length; j++)
        {
            double di = li - _typeLogIn[j], dout = lo - _typeLogOut[j];
            double d = di * di + dout * dout;
            if (d < bestD) { bestD = d; best = j; }
        }
        return best;
    }

    public TReplica Route(int inputTokens, int outputTokens) => RouteType(Classify(inputTokens, outputTokens));

    /// <summary>The replica for a request of type <paramref name="type"/> (-1: untyped, least loaded of all).</summary>
    public TReplica RouteType(int type)
    {
        if (type >= 0 && type < _targets.Length && _targets[type].Length > 0)
        {
            var targets = _targets[type];
            var weights = _weights[type];
            int best = 0;
            double bestScore = double.MaxValue;
            for (int i = 0; i < targets.Length; i++)
            {
                double score = (_load(targets[i]) + 1) / weights[i];
                if (score < bestScore) { bestScore = score; best = i; }
            }
            return targets[best];
        }
        var chosen = _all[0];
        int chosenLoad = _load(chosen);
        for (int i = 1; i < _all.Length; i++)
        {
            int load = _load(_all[i]);
            if (load < chosenLoad) (chosen, chosenLoad) = (_all[i], load);
        }
        return chosen;
    }
}
