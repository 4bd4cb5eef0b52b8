using OServe.Contracts;
using OServe.Engine.Orchestration;
using OServe.Models.Llama;
using OServe.Models.Parallelism;

namespace OServe.Engine.Distributed;

/// <summary>
/// What a plan must satisfy to run across workers: the single-process checks (cluster, model card,
/// tp x pp splits, devices in the cluster, the tp ranks of a pipeline stage on one node) and at
/// least one replica. The stages of a replica may be on different nodes: the worker of its first
/// stage runs its engine and the activations pass worker to worker.
/// </summary>
public static class ClusterPlanChecks
{
    public static IReadOnlyList<ContractError> Validate(Plan plan, Cluster cluster, ModelCard card, LlamaConfig config, SourceMap? lines = null)
    {
        lines ??= SourceMap.None("plan");
        var errors = PlanChecks.Validate(plan, cluster, card, lines).ToList();
        errors.AddRange(ReplicaBuilderRules.Unsupported(plan, config, DevicePool.Logical(cluster)).Select(u => lines.Error(u.Field, u.Message)));
        if (plan.Replicas.Count == 0)
            errors.Add(lines.Error("replicas", "the plan has no replicas: requests would have nowhere to go"));
        return errors;
    }
}
