using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Engine.Execution;
using OServe.Models;

namespace OServe.Engine.Demo;

/// <summary>
/// STAND-IN for the engine's PlanRuntime until it lands: runs each replica of a plan as its own
/// <see cref="AsyncEngine"/> (own scheduler, own paged KV cache) over ONE shared copy of the
/// weights. TP and PP degrees are NOT executed: a tp2 replica computes unsharded, and all replicas
/// share the process's CPU threads, so "a replica on N logical devices" is only its share of the
/// machine. Requests are typed like the controller types them and routed by the plan's weights to
/// the least-loaded replica relative to its weight. A switch starts the new replicas (no weights
/// move: they are shared), sends new requests to the new routing at once, then drains the removed
/// replicas (their admitted requests finish there) and stops them. Nothing is dropped or sent twice.
/// </summary>
public sealed class UnshardedReplicaSet : IInferenceEngine, IPlanTarget, IAsyncDisposable
{
    private sealed class Replica(ReplicaSpec spec, AsyncEngine engine)
    {
        public int NumInFlight;
        public ReplicaSpec Spec { get; } = spec;
        public AsyncEngine Engine { get; } = engine;
    }

    private sealed record Deployment(Plan Plan, IReadOnlyDictionary<string, Replica> Replicas);

    private readonly LoadedModel _model;
    private readonly EngineSettings _settings;
    private readonly ArrivalRecorder _typing;
    private readonly SemaphoreSlim _switching = new(1, 1);
    private volatile Deployment _deployment;
    private long _promptBase, _generationBase;

    public UnshardedReplicaSet(LoadedModel model, EngineSettings settings, Plan initial)
    {
        _model = model;
        _settings = settings;
        _typing = new ArrivalRecorder(initial.RequestTypes);
        _deployment = new Deployment(initial, initial.Replicas.ToDictionary(r => r.Id, Start));
    }

    /// <summary>Raised on an engine loop thread after each request finishes (latencies for the live view).</summary>
    public event Action<RequestMetrics>? RequestFinished;

    /// <summary>One clock for every replica, so arrival times stamped by the server compare with any replica's.</summary>
    public IClock Clock { get; } = new SystemClock();

    public Plan Current => _deployment.Plan;
    public string ModelName => _model.Name;
    public int MaxModelLength => First.MaxModelLength;
    public int? VocabSize => First.VocabSize;
    public IReadOnlyList<int> Encode(string text, bool addBos) => First.Encode(text, addBos);

    private AsyncEngine First => _deployment.Replicas.Values.First().Engine;

    public EngineSnapshot Snapshot()
    {
        var snaps = _deployment.Replicas.Values.Select(r => r.Engine.Snapshot()).ToArray();
        return new EngineSnapshot(snaps.Sum(s => s.NumRequestsRunning), snaps.Sum(s => s.NumRequestsWaiting),
            snaps.Length == 0 ? 0 : snaps.Average(s => s.KvCacheUsage),
            Interlocked.Read(ref _promptBase) + snaps.Sum(s => s.PromptTokensTotal), Interlocked.Read(ref _generationBase) + snaps.Sum(s => s.GenerationTokensTotal));
    }

    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken)
    {
        var deployment = _deployment;
        var replica = Route(deployment, request);
        Interlocked.Increment(ref replica.NumInFlight);
        try
        {
            return Track(replica, replica.Engine.GenerateAsync(request, cancellationToken));
        }
        catch
        {
            Interlocked.Decrement(ref replica.NumInFlight);
            throw;
        }
    }

    public async Task<PlanSwitchResult> ApplyAsync(Plan next, CancellationToken cancellationToken)
    {
        await _switching.WaitAsync(cancellationToken);
        try
        {
            var sw = Stopwatch.StartNew();
            var old = _deployment;
            if (next.Replicas.Count == 0) return new PlanSwitchResult(false, 0, "refused: the plan has no replicas");
            static string Key(ReplicaSpec r) => $"{r.Id}|{r.Tp}|{r.Pp}|{string.Join(",", r.Devices)}";
            var kept = old.Replicas.Values.Where(r => next.Replicas.Any(n => Key(n) == Key(r.Spec))).ToDictionary(r => r.Spec.Id);
            var removed = old.Replicas.Values.Where(r => !kept.ContainsKey(r.Spec.Id)).ToArray();
            var replicas = next.Replicas.ToDictionary(n => n.Id, n => kept.TryGetValue(n.Id, out var k) ? k : Start(n));
            _deployment = new Deployment(next, replicas);
            var started = sw.Elapsed.TotalSeconds;
            foreach (var r in removed)
            {
                await r.Engine.StopAsync(CancellationToken.None); // drain: admitted requests finish on the old replica
                var s = r.Engine.Snapshot();
                Interlocked.Add(ref _promptBase, s.PromptTokensTotal);
                Interlocked.Add(ref _generationBase, s.GenerationTokensTotal);
            }
            return new PlanSwitchResult(true, sw.Elapsed.TotalSeconds,
                $"{kept.Count} kept, {replicas.Count - kept.Count} started in {started:F2} s, {removed.Length} drained (unsharded stand-in: no weights moved)");
        }
        finally
        {
            _switching.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var r in _deployment.Replicas.Values) await r.Engine.DisposeAsync();
    }

    private Replica Start(ReplicaSpec spec)
    {
        var engine = LocalEngineBuilder.Create(_model, _settings, clock: Clock);
        engine.RequestFinished += m => RequestFinished?.Invoke(m);
        return new Replica(spec, engine);
    }

    /// <summary>The type's routing weights, then the replica with the fewest requests in flight per unit of weight.</summary>
    private Replica Route(Deployment d, GenerationRequest request)
    {
        var type = d.Plan.RequestTypes[_typing.Classify(request.PromptTokens.Count, request.Sampling.MaxTokens)].Name;
        var weights = d.Plan.Routing.FirstOrDefault(r => r.Type == type)?.Weights;
        var candidates = weights is null ? [] : d.Replicas.Values.Where(r => weights.GetValueOrDefault(r.Spec.Id) > 0).ToArray();
        if (candidates.Length == 0) // a type the plan routes nowhere still gets served
            return d.Replicas.Values.MinBy(r => Volatile.Read(ref r.NumInFlight))!;
        return candidates.MinBy(r => (Volatile.Read(ref r.NumInFlight) + 1) / weights![r.Spec.Id])!;
    }

    private static async IAsyncEnumerable<GenerationEvent> Track(Replica replica, IAsyncEnumerable<GenerationEvent> events,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        try
        {
            await foreach (var e in events.WithCancellation(cancellationToken)) yield return e;
        }
        finally
        {
            Interlocked.Decrement(ref replica.NumInFlight);
        }
    }
}
