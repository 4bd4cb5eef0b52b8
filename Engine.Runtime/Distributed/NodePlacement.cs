using Orleans;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace OServe.Engine.Distributed;

/// <summary>
/// Orleans placement for grains keyed by a node name: the activation goes to the active silo whose
/// name (SiloOptions.SiloName, set to --node) is the key, the newest one if a restarted worker's
/// old silo is not yet declared dead. With no such silo the call fails: a worker grain must never
/// activate on a silo that does not own that node's devices.
/// </summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class NodePlacement : PlacementStrategy
{
    public static NodePlacement Instance { get; } = new();
    public override bool IsUsingGrainDirectory => true;
}

[AttributeUsage(AttributeTargets.Class | AttributeTargets.Interface, AllowMultiple = false)]
public sealed class NodePlacementAttribute() : PlacementAttribute(NodePlacement.Instance);

public sealed class NodePlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string node = target.GrainIdentity.Key.ToString()!;
        var compatible = context.GetCompatibleSilos(target).ToHashSet();
        var members = membership.CurrentSnapshot.Members.Values;
        var silo = members
            .Where(m => m.Status == SiloStatus.Active && m.Name == node && compatible.Contains(m.SiloAddress))
            .OrderByDescending(m => m.SiloAddress.Generation)
            .Select(m => m.SiloAddress)
            .FirstOrDefault();
        if (silo is null)
        {
            var names = members.Where(m => m.Status == SiloStatus.Active).Select(m => m.Name).Order();
            throw new OrleansException($"no live worker for node '{node}' (live workers: {string.Join(", ", names)})");
        }
        return Task.FromResult(silo);
    }
}
