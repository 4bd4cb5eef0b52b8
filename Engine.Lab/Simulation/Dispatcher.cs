using OServe.Contracts;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Simulation;

/// <summary>
/// Routes each simulated request by the plan in force, with the engine's own
/// <see cref="RoutingPolicy{TReplica}"/> (nearest request type, then fewest outstanding requests
/// per unit of routing weight), so a simulated run and the real engine route alike.
/// </summary>
public sealed class Dispatcher
{
    private readonly RoutingPolicy<SimReplica> _policy;

    /// <param name="replicas">The plan's replicas, by id (serving or being built).</param>
    public Dispatcher(Plan plan, IReadOnlyDictionary<string, SimReplica> replicas)
    {
        _policy = new RoutingPolicy<SimReplica>(plan, id => replicas[id], r => r.Load);
    }

    public int NumTypes => _policy.NumTypes;

    /// <summary>The plan's request type nearest to (input, output) tokens; -1 when the plan has none.</summary>
    public int Classify(int inputTokens, int outputTokens) => _policy.Classify(inputTokens, outputTokens);

    public SimReplica Route(int inputTokens, int outputTokens) => _policy.Route(inputTokens, outputTokens);
}
