using OServe.Contracts;
using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// Builds each simulated replica from the planner's cost model: KV blocks from its memory plan
/// (what is left of a GPU after the weight shard and workspace), step time from
/// <see cref="CostModelIterationTime"/>, limits from the plan's replica spec.
/// </summary>
public sealed class CostModelReplicas(Cluster cluster, ModelCard card, CostCoefficients coefficients, int blockSize = 16)
{
    private readonly ModelSpec _model = PlannerAdapter.Model(card);
    private readonly Dictionary<string, (int Blocks, CostModelIterationTime Time)> _byShape = new(StringComparer.Ordinal);

    public CostCoefficients Coefficients { get; } = coefficients;
    public ModelSpec ModelSpec => _model;

    public ReplicaModel For(ReplicaSpec spec)
    {
        var config = PlannerAdapter.Config(spec, cluster);
        var links = PlannerAdapter.Links(spec, cluster);
        string key = $"{config.Label}/{config.CrossNode}/{links.IntraBytesPerSec}/{links.AllReduceLatencySec}/{links.AllReduceBusBytesPerSec}/{links.InterLatencySec}";
        if (!_byShape.TryGetValue(key, out var shape))
        {
            var memory = ReplicaCost.memory(Coefficients, _model, config);
            if (memory.IsError)
                throw new SimulationException($"replica '{spec.Id}': {memory.ErrorValue}");
            int blocks = (int)Math.Min(int.MaxValue, memory.ResultValue.KvCapacityTokens / blockSize);
            shape = (blocks, new CostModelIterationTime(Coefficients, _model, links, config));
            _byShape[key] = shape;
        }
        var scheduler = new SchedulerConfig
        {
            MaxNumSeqs = spec.MaxNumSeqs,
            MaxNumBatchedTokens = spec.MaxNumBatchedTokens,
            BlockSize = blockSize,
            NumKvBlocks = shape.Blocks,
            MaxModelLen = (int)Math.Min(card.MaxContext, (long)shape.Blocks * blockSize),
        };
        return new ReplicaModel(scheduler, shape.Time);
    }
}
