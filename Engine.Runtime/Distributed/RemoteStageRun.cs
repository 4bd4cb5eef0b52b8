using OServe.Models.Kv;
using OServe.Models.Parallelism;
using static TorchSharp.torch;

namespace OServe.Engine.Distributed;

/// <summary>
/// A run of a replica's later pipeline stages held by another worker (<see cref="IWorkerGrain.LoadStages"/>),
/// as the replica's first worker sees it: each step sends the batch's chunks and the activations
/// there and gets back the next activations or the logits, worker to worker through Orleans. Its
/// first failure (the worker died or lost the run) breaks the replica: every later step fails at
/// once, and <paramref name="onBroken"/> is told so the worker unloads it and the controller
/// builds it again where it can.
/// </summary>
internal sealed class RemoteStageRun(IWorkerGrain worker, string node, string runKey, IndexRange stages, Action<string> onBroken) : IStageRun
{
    private volatile string? _broken;

    public IndexRange Stages => stages;
    public string Node => node;
    public string RunKey => runKey;

    public void CreateKvCache(int numBlocks, int blockSize) => Call(() => worker.CreateStageCache(runKey, numBlocks, blockSize), "creating its KV cache");

    public Tensor Forward(IReadOnlyList<SequenceChunk> batch, Tensor hidden)
    {
        var wire = batch.Select(WireChunk.Of).ToArray();
        var sent = WireTensor.Of(hidden);
        return Call(() => worker.RunStages(runKey, wire, sent), "a step").ToTensor();
    }

    private void Call(Func<Task> call, string what) => Call(async () => { await call(); return true; }, what);

    private T Call<T>(Func<Task<T>> call, string what)
    {
        if (_broken is { } why)
            throw new InvalidOperationException($"stages {stages} on worker {node} are lost ({why})");
        try
        {
            return call().GetAwaiter().GetResult();
        }
        catch (Exception error)
        {
            _broken = $"{what} failed: {error.Message.Split('\n')[0]}";
            onBroken(_broken);
            throw new InvalidOperationException($"stages {stages} on worker {node}: {_broken}", error);
        }
    }

    public void Dispose()
    {
        try
        {
            worker.UnloadStages(runKey).Wait(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // That worker is gone, its run with it; or the controller unloads the orphan later.
        }
    }

    public override string ToString() => $"stages {stages} on worker {node}";
}
