using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Models.Parallelism;

namespace OServe.Engine.Orchestration;

/// <summary>
/// One replica of the plan in force: its engine (scheduler, runner, KV cache) over its own copy of
/// the weights on its devices. <see cref="Outstanding"/> counts requests routed here and not yet
/// finished (moved requests count where they are now); the router reads it lock-free.
/// </summary>
public sealed class LiveReplica
{
    private int _outstanding;

    internal LiveReplica(ReplicaSpec spec, IPagedLanguageModel model, AsyncEngine engine, TorchModelRunner runner)
    {
        Spec = spec;
        Model = model;
        Engine = engine;
        Runner = runner;
    }

    internal TorchModelRunner Runner { get; }

    /// <summary>The plan's entry; its Id follows the plan in force (a kept replica takes the new plan's id).</summary>
    public ReplicaSpec Spec { get; internal set; }

    public string Id => Spec.Id;
    /// <summary>The weights: a <see cref="ParallelLlama"/> over the replica's tp x pp devices.</summary>
    public IPagedLanguageModel Model { get; }
    public AsyncEngine Engine { get; }

    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Set once the replica is out of the routing: late requests are sent elsewhere.</summary>
    public bool IsRetired { get; internal set; }

    /// <summary>Requests this replica has finished (moved-away ones are counted where they finish).</summary>
    public long NumFinished => Interlocked.Read(ref _numFinished);
    private long _numFinished;

    /// <summary>Prompt and generated tokens of the warm-up run before the replica took traffic (not served to anyone).</summary>
    internal (long Prompt, long Generated) WarmUpTokens { get; set; }

    internal void AddOutstanding(int delta) => Interlocked.Add(ref _outstanding, delta);
    internal void CountFinished() => Interlocked.Increment(ref _numFinished);

    /// <summary>Same devices, parallelism and GPU type: the replica can stay as it is under a new plan.</summary>
    public bool SameShape(ReplicaSpec other) =>
        other.GpuType == Spec.GpuType && other.Tp == Spec.Tp && other.Pp == Spec.Pp && other.Devices.SequenceEqual(Spec.Devices);

    /// <summary>Finishes what the engine still holds, then frees the cache and the weights.</summary>
    internal async Task StopAsync()
    {
        await Engine.StopAsync().ConfigureAwait(false);
        Runner.Dispose();
        Model.Dispose();
    }

    public override string ToString() => $"{Id} ({Spec.ConfigKey} on {string.Join(",", Spec.Devices)})";
}
