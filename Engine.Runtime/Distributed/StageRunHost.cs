using System.Collections.Concurrent;
using System.Diagnostics;
using OServe.Models;
using OServe.Models.Loading;
using OServe.Models.Parallelism;

namespace OServe.Engine.Distributed;

/// <summary>
/// The runs of later pipeline stages a worker holds for replicas whose engine runs on another
/// worker (<see cref="IWorkerGrain.LoadStages"/>): each a <see cref="LocalStageRun"/> with its KV
/// cache, keyed by the run key its replica's first worker chose. Steps of one run come one at a
/// time (that worker's engine loop sends them in order); a run is locked while it steps, so an
/// unload waits for the step. Thread-safe.
/// </summary>
internal sealed class StageRunHost(string node, LoadedModel model, ILogger logger) : IDisposable
{
    private sealed class Held(LocalStageRun run, string replicaKey, string headNode)
    {
        public LocalStageRun Run { get; } = run;
        public long Steps;
        public StageRunStatus Status(string runKey) => new(runKey, replicaKey, headNode, Run.Stages.Start, Run.Stages.Count, Interlocked.Read(ref Steps));
    }

    private readonly ConcurrentDictionary<string, Held> _runs = new(StringComparer.Ordinal);

    public StageRunStatus[] Statuses() => _runs.Select(kv => kv.Value.Status(kv.Key)).ToArray();

    /// <summary>Builds stages <paramref name="stages"/> of <paramref name="shape"/> on <paramref name="devices"/> from <paramref name="source"/>; a second call with the key is a no-op.</summary>
    public LoadReport Load(ReplicaShape shape, IndexRange stages, IReadOnlyList<PoolDevice> devices, string runKey, string headNode, IWeightSource source, string origin)
    {
        if (_runs.ContainsKey(runKey))
            return new LoadReport(runKey, "already loaded", 0, 0, 0, 0, WasLoaded: false);
        var watch = Stopwatch.StartNew();
        var part = ParallelLlama.Create(model.Config, devices, shape.Tp, shape.Pp, source, model.Model.DType, stages: stages);
        var held = new Held(new LocalStageRun(part), shape.Key, headNode);
        if (!_runs.TryAdd(runKey, held))
        {
            held.Run.Dispose();
            return new LoadReport(runKey, "already loaded", 0, 0, 0, 0, WasLoaded: false);
        }
        logger.LogInformation("worker {Node}: loaded stages {Stages} of {Replica} for worker {Head} from {Origin} in {Seconds:F2}s",
            node, stages, shape.Key, headNode, origin, watch.Elapsed.TotalSeconds);
        return new LoadReport(runKey, origin, 0, 0, 0, watch.Elapsed.TotalSeconds, WasLoaded: true);
    }

    public void CreateCache(string runKey, int numBlocks, int blockSize)
    {
        var held = Get(runKey);
        lock (held)
            held.Run.CreateKvCache(numBlocks, blockSize);
    }

    /// <summary>One step of the run from the previous stage's activations: the next activations, or the logits from the last stage.</summary>
    public WireTensor Run(string runKey, WireChunk[] batch, WireTensor hidden)
    {
        var held = Get(runKey);
        lock (held)
        {
            using var noGrad = TorchSharp.torch.no_grad();
            using var input = hidden.ToTensor();
            using var output = held.Run.Forward(batch.Select(c => c.ToChunk()).ToArray(), input);
            held.Steps++;
            return WireTensor.Of(output);
        }
    }

    public bool Unload(string runKey)
    {
        if (!_runs.TryRemove(runKey, out var held))
            return false;
        lock (held)
            held.Run.Dispose();
        logger.LogInformation("worker {Node}: unloaded {Run}", node, runKey);
        return true;
    }

    private Held Get(string runKey) => _runs.TryGetValue(runKey, out var held) ? held
        : throw new ReplicaUnavailableException($"stage run {runKey} is not loaded on worker '{node}'");

    public void Dispose()
    {
        foreach (var key in _runs.Keys.ToArray())
            Unload(key);
    }
}
