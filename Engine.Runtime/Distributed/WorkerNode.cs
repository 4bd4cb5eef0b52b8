using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Models;
using OServe.Models.Parallelism;
using Orleans;

namespace OServe.Engine.Distributed;

/// <summary>What one worker runs with: its node, its replicas' engine arguments, the served name.</summary>
public sealed record WorkerOptions
{
    public required string Node { get; init; }
    public EngineSettings Engine { get; init; } = new();
    public string? ServedName { get; init; }

    /// <summary>Bytes per message when a peer copies weights from this worker (shard send/receive goes in chunks).</summary>
    public int WeightChunkBytes { get; init; } = 1 << 20;
}

/// <summary>
/// One node's share of the cluster, owned by its worker silo: the node's devices, the model's host
/// copy, and the replicas the plan puts here, each built with the single-process engine's own
/// <see cref="ReplicaBuilder"/> and run by its <see cref="AsyncEngine"/>. Replicas are keyed by
/// shape (<see cref="ReplicaShape.Key"/>). Thread-safe: grain calls interleave.
/// </summary>
public sealed class WorkerNode : IAsyncDisposable
{
    private readonly WorkerOptions _options;
    private readonly LoadedModel _model;
    private readonly IWeightStore _storage;
    private readonly IGrainFactory _grains;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, LiveReplica> _replicas = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<LoadReport>>> _loading = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Task> _retiring = new(StringComparer.Ordinal);
    private readonly ModelWeightSource _hostWeights;
    private long _bytesReceived, _bytesSent;

    public WorkerNode(WorkerOptions options, LoadedModel model, IWeightStore storage, DevicePool pool, IGrainFactory grains, ILogger logger)
    {
        _options = options;
        _model = model;
        _storage = storage;
        Pool = pool;
        _grains = grains;
        _logger = logger;
        _hostWeights = new ModelWeightSource(model.Model);
        if (pool.Devices.Any(d => ReplicaShape.NodeOf(d.Id) != options.Node))
            throw new ArgumentException($"the device pool ({pool}) holds devices of another node than '{options.Node}'");
    }

    public string Node => _options.Node;
    public DevicePool Pool { get; }
    public DateTime StartedUtc { get; } = DateTime.UtcNow;
    public IClock Clock { get; } = new SystemClock();

    public WorkerStatus Status() => new(
        Node, Pool.Devices.Select(d => d.Id).ToArray(), _options.ServedName ?? _model.Name, _model.Config.ParameterCount,
        _replicas.Values.Select(r => Describe(r, isRetiring: false))
            .Concat(_retiring.Keys.Select(k => new ReplicaStatus(k, 0, 0, 0, 0, IsRetiring: true))).ToArray(),
        Interlocked.Read(ref _bytesReceived), Interlocked.Read(ref _bytesSent), StartedUtc);

    /// <summary>
    /// Builds <paramref name="shape"/> here unless it is loaded (or loading: a second call waits for
    /// the first). Weights: the host copy, or with <paramref name="weightsFrom"/> this node's devices
    /// first and the rest from that peer worker in chunks.
    /// </summary>
    public Task<LoadReport> LoadAsync(ReplicaShape shape, string? weightsFrom)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (_replicas.ContainsKey(shape.Key))
            return Task.FromResult(new LoadReport(shape.Key, "already loaded", 0, 0, 0, 0, WasLoaded: false));
        var load = _loading.GetOrAdd(shape.Key, _ => new Lazy<Task<LoadReport>>(() => Task.Run(() => Build(shape, weightsFrom))));
        return Finish(load);

        async Task<LoadReport> Finish(Lazy<Task<LoadReport>> pending)
        {
            try { return await pending.Value.ConfigureAwait(false); }
            finally { _loading.TryRemove(new KeyValuePair<string, Lazy<Task<LoadReport>>>(shape.Key, pending)); }
        }
    }

    private LoadReport Build(ReplicaShape shape, string? weightsFrom)
    {
        foreach (var device in shape.Devices)
            if (!Pool.Contains(device))
                throw new ArgumentException($"replica {shape.Key}: device '{device}' is not on worker '{Node}' ({Pool})");
        var spec = shape.ToSpec(shape.Key);
        var watch = Stopwatch.StartNew();
        var options = new PlanRuntimeOptions { Engine = _options.Engine, ServedName = _options.ServedName, Devices = Pool };
        LiveReplica replica;
        LoadReport report;
        if (weightsFrom is null || weightsFrom == Node)
        {
            replica = new ReplicaBuilder(_model, _storage, Pool, options, Clock).BuildFromHost(spec);
            report = new LoadReport(shape.Key, "host copy", 0, 0, 0, watch.Elapsed.TotalSeconds, WasLoaded: true);
        }
        else
        {
            var peer = new PeerWeightStore(_grains.GetGrain<IWorkerGrain>(weightsFrom), weightsFrom);
            var (built, _, transfer) = new ReplicaBuilder(_model, peer, Pool, options, Clock).Build(spec, copyFromPeers: true, ShardTransfer.Instance);
            replica = built;
            Interlocked.Add(ref _bytesReceived, peer.BytesReceived);
            report = new LoadReport(shape.Key, $"worker {weightsFrom}", peer.BytesReceived,
                transfer.BytesFromPeers + transfer.BytesFromSameDevice, 0, watch.Elapsed.TotalSeconds, WasLoaded: true);
        }
        if (!_replicas.TryAdd(shape.Key, replica))
        {
            replica.StopAsync().GetAwaiter().GetResult();
            throw new InvalidOperationException($"replica {shape.Key} was loaded twice on worker '{Node}'");
        }
        _logger.LogInformation("worker {Node}: loaded {Replica} from {Origin} in {Seconds:F2}s ({Bytes} B over the network)",
            Node, shape.Key, report.Origin, report.Seconds, report.BytesFromPeerWorker);
        return report;
    }

    /// <summary>Out of service now; its admitted requests finish, then its weights and cache are freed. False when not loaded.</summary>
    public bool Unload(string key)
    {
        if (!_replicas.TryRemove(key, out var replica))
            return false;
        replica.IsRetired = true;
        _retiring[key] = Task.Run(async () =>
        {
            try { await replica.StopAsync().ConfigureAwait(false); }
            catch (Exception error) { _logger.LogError(error, "worker {Node}: stopping {Replica} failed", Node, key); }
            finally { _retiring.TryRemove(key, out _); }
        });
        _logger.LogInformation("worker {Node}: unloading {Replica} (its running requests finish first)", Node, key);
        return true;
    }

    /// <summary>One generation on replica <paramref name="key"/>; the stream ends with the finish event, and leaving it early aborts the request.</summary>
    public async IAsyncEnumerable<WorkerEvent> GenerateAsync(string key, WorkerRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_replicas.TryGetValue(key, out var replica))
            throw new ReplicaUnavailableException($"replica {key} is not loaded on worker '{Node}'");
        IAsyncEnumerable<GenerationEvent> events;
        try
        {
            events = replica.Engine.GenerateAsync(request.ToGenerationRequest(), cancellationToken);
        }
        catch (AdmissionRejectedException) when (replica.IsRetired)
        {
            throw new ReplicaUnavailableException($"replica {key} on worker '{Node}' is being unloaded");
        }
        await foreach (var e in events.WithCancellation(cancellationToken).ConfigureAwait(false))
            yield return WorkerEvent.Of(e);
    }

    public WeightEntry[] WeightIndex() =>
        _model.Model.Weights.Select(kv => new WeightEntry(kv.Key, (int)kv.Value.dtype, kv.Value.shape, kv.Value.NumberOfElements * kv.Value.ElementSize))
            .OrderBy(e => e.Name, StringComparer.Ordinal).ToArray();

    /// <summary>Bytes [offset, offset + length) of tensor <paramref name="name"/> of the host copy, at most one chunk.</summary>
    public byte[] ReadWeightChunk(string name, long offset, int length)
    {
        if (length < 0 || length > _options.WeightChunkBytes)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"a chunk is at most {_options.WeightChunkBytes} bytes");
        using var tensor = _hostWeights.Load(name);
        using var contiguous = tensor.contiguous();
        var bytes = contiguous.bytes;
        if (offset < 0 || offset > bytes.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), offset, $"tensor '{name}' has {bytes.Length} bytes");
        var chunk = bytes.Slice((int)offset, (int)Math.Min(length, bytes.Length - offset)).ToArray();
        Interlocked.Add(ref _bytesSent, chunk.Length);
        return chunk;
    }

    public int WeightChunkBytes => _options.WeightChunkBytes;

    private static ReplicaStatus Describe(LiveReplica r, bool isRetiring)
    {
        var s = r.Engine.Snapshot();
        return new ReplicaStatus(r.Id, s.NumRequestsRunning, s.NumRequestsWaiting, s.KvCacheUsage, s.GenerationTokensTotal, isRetiring);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var key in _replicas.Keys.ToArray())
            Unload(key);
        await Task.WhenAll(_retiring.Values.ToArray()).ConfigureAwait(false);
    }
}
