using OServe.Contracts;

namespace OServe.Engine.Simulation;

/// <summary>
/// Routes each request by the plan in force. A request is typed by the plan's nearest request type
/// (log input, log output length, as the planner's k-means types), then sent to the replica with the
/// fewest outstanding requests per unit of routing weight among those the type is routed to (a
/// weight is the rate the planner routed there, so load / weight estimates the time to clear the
/// backlog, by Little's law). A type the plan does not route goes to the least-loaded replica.
/// Ties go to the replica listed first, so routing is deterministic.
/// </summary>
public sealed class Dispatcher
{
    private readonly double[] _typeLogIn;
    private readonly double[] _typeLogOut;
    private readonly SimReplica[][] _targets;
    private readonly double[][] _weights;
    private readonly SimReplica[] _all;

    /// <param name="replicas">The plan's replicas, by id (serving or being built).</param>
    public Dispatcher(Plan plan, IReadOnlyDictionary<string, SimReplica> replicas)
    {
        var types = plan.RequestTypes;
        _typeLogIn = types.Select(t => Math.Log(Math.Max(1, t.InputTokens))).ToArray();
        _typeLogOut = types.Select(t => Math.Log(Math.Max(1, t.OutputTokens))).ToArray();
        _targets = new SimReplica[types.Count][];
        _weights = new double[types.Count][];
        for (int j = 0; j < types.Count; j++)
        {
            var entry = plan.Routing.FirstOrDefault(e => e.Type == types[j].Name);
            // Plan order, not dictionary order, decides ties.
            var chosen = plan.Replicas.Where(r => entry is not null && entry.Weights.TryGetValue(r.Id, out var w) && w > 0).ToList();
            _targets[j] = chosen.Select(r => replicas[r.Id]).ToArray();
            _weights[j] = chosen.Select(r => entry!.Weights[r.Id]).ToArray();
        }
        _all = plan.Replicas.Select(r => replicas[r.Id]).ToArray();
        if (_all.Length == 0)
            throw new ArgumentException($"plan v{plan.Version} has no replicas: requests would have nowhere to go");
    }

    public int NumTypes => _typeLogIn.Length;

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

    public SimReplica Route(int inputTokens, int outputTokens)
    {
        int type = Classify(inputTokens, outputTokens);
        if (type >= 0 && _targets[type].Length > 0)
        {
            var targets = _targets[type];
            var weights = _weights[type];
            int best = 0;
            double bestScore = double.MaxValue;
            for (int i = 0; i < targets.Length; i++)
            {
                double score = (targets[i].Load + 1) / weights[i];
                if (score < bestScore) { bestScore = score; best = i; }
            }
            return targets[best];
        }
        var chosen = _all[0];
        for (int i = 1; i < _all.Length; i++)
            if (_all[i].Load < chosen.Load) chosen = _all[i];
        return chosen;
    }
}
