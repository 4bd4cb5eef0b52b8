using Orleans;
using Orleans.Concurrency;

namespace OServe.Engine.Distributed;

/// <summary>
/// The grain side of <see cref="IWorkerGrain"/>: forwards to the silo's <see cref="WorkerNode"/>.
/// Reentrant: generations stream for seconds and must interleave with loads, status and chunk reads
/// (the node is thread-safe, and heavy work runs off the grain's scheduler). Orleans reads placement
/// attributes on the grain class, not on its interface.
/// </summary>
[Reentrant, NodePlacement]
public sealed class WorkerGrain(WorkerNode node) : Grain, IWorkerGrain
{
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // NodePlacement puts the grain here; this guards against any other placement path.
        var key = this.GetPrimaryKeyString();
        if (key != node.Node)
            throw new InvalidOperationException($"worker grain '{key}' activated on the worker of node '{node.Node}'");
        return Task.CompletedTask;
    }

    public Task<WorkerStatus> GetStatus() => Task.FromResult(node.Status());

    public Task<LoadReport> LoadReplica(ReplicaShape shape, string? weightsFrom) => node.LoadAsync(shape, weightsFrom);

    public Task<bool> UnloadReplica(string key) => Task.FromResult(node.Unload(key));

    public Task<LoadReport> LoadStages(ReplicaShape shape, int firstStage, int numStages, string runKey, string headNode, string? weightsFrom) =>
        node.LoadStagesAsync(shape, new OServe.Models.Parallelism.IndexRange(firstStage, numStages), runKey, headNode, weightsFrom);

    public Task CreateStageCache(string runKey, int numBlocks, int blockSize) => Task.Run(() => node.CreateStageCache(runKey, numBlocks, blockSize));

    // Off the grain's scheduler: a step's compute must not hold up other calls.
    public Task<WireTensor> RunStages(string runKey, WireChunk[] batch, WireTensor hidden) => Task.Run(() => node.RunStages(runKey, batch, hidden));

    public Task<bool> UnloadStages(string runKey) => Task.FromResult(node.UnloadStages(runKey));

    public Task<RetireReport> RetireReplica(string key, int finishInPlaceMaxSteps) => node.RetireAsync(key, finishInPlaceMaxSteps);

    // Off the grain's scheduler: the first open of a ticket copies its KV to host bytes.
    public Task<WireKvHeader?> OpenKv(long ticket) => Task.Run(() => node.OpenKv(ticket));

    public Task<byte[]> ReadKvChunk(long ticket, long offset, int length) => Task.FromResult(node.ReadKvChunk(ticket, offset, length));

    public Task ReleaseKv(long ticket)
    {
        node.ReleaseKv(ticket);
        return Task.CompletedTask;
    }

    public IAsyncEnumerable<WorkerEvent> Generate(string key, WorkerRequest request, CancellationToken cancellationToken = default) =>
        node.GenerateAsync(key, request, cancellationToken);

    public Task<WeightEntry[]> GetWeightIndex() => Task.FromResult(node.WeightIndex());

    // Off the grain's scheduler: a chunk copy is short, but many in flight would stall other calls.
    public Task<byte[]> ReadWeightChunk(string name, long offset, int length) => Task.Run(() => node.ReadWeightChunk(name, offset, length));
}
