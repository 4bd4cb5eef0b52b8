using OServe.Contracts;
using OServe.Engine.Orchestration;
using OServe.Models.Llama;
using OServe.Models.Parallelism;

namespace OServe.Engine.Distributed;

/// <summary>
/// What a plan must satisfy to run across workers: the single-process checks (cluster, model card,
/// tp x pp splits, devices in the cluster), plus one rule of this runtime: a replica's devices are
/// on one node, since pipeline stages on different workers (activations passed worker to worker)
/// are not built yet.
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
        for (int i = 0; i < plan.Replicas.Count; i++)
        {
            var nodes = plan.Replicas[i].Devices.Select(ReplicaShape.NodeOf).Distinct().ToArray();
            if (nodes.Length > 1)
                errors.Add(lines.Error($"replicas[{i}].devices",
                    $"replica '{plan.Replicas[i].Id}' spans nodes {string.Join(" and ", nodes)}: a replica runs on one worker (pipeline stages across workers are not supported yet)"));
        }
        return errors;
    }
}
