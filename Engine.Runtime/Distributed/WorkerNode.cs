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

    /// <summary>Bytes per message when a peer copies weights or a moved request's KV from this worker (both go in chunks).</summary>
    public int WeightChunkBytes { get; init; } = 1 << 20;

    /// <summary>How long a moved request's KV entries wait here for the worker that continues it.</summary>
    public TimeSpan KvParkTime { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Told about every replica's engine steps (each on its replica's loop thread); tests pace the engines with it.</summary>
    public IStepObserver? StepObserver { get; init; }
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
    private readonly KvParking _parking;
    private readonly StageRunHost _stageRuns;
    private long _bytesReceived, _bytesSent;
    private long _movedOut, _movedOutWithKv, _movedIn, _resumedFromKv, _kvBytesSent, _kvBytesReceived;

    public WorkerNode(WorkerOptions options, LoadedModel model, IWeightStore storage, DevicePool pool, IGrainFactory grains, ILogger logger)
    {
        _options = options;
        _model = model;
        _storage = storage;
        Pool = pool;
        _grains = grains;
        _logger = logger;
        _hostWeights = new ModelWeightSource(model.Model);
        _parking = new KvParking(options.KvParkTime);
        _stageRuns = new StageRunHost(options.Node, model, logger);
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
        Interlocked.Read(ref _bytesReceived), Interlocked.Read(ref _bytesSent), StartedUtc)
    {
        RequestsMovedOut = Interlocked.Read(ref _movedOut), RequestsMovedOutWithKv = Interlocked.Read(ref _movedOutWithKv),
        RequestsMovedIn = Interlocked.Read(ref _movedIn), RequestsResumedFromKv = Interlocked.Read(ref _resumedFromKv),
        KvBytesSent = Interlocked.Read(ref _kvBytesSent), KvBytesReceived = Interlocked.Read(ref _kvBytesReceived),
        StageRuns = _stageRuns.Statuses(),
    };

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
        var runs = shape.StageRuns(out var error) ?? throw new ArgumentException($"replica {shape.Key}: {error}");
        if (runs[0].Node != Node)
            throw new ArgumentException($"replica {shape.Key}: its first stage is on {runs[0].Node}, so worker {runs[0].Node} runs it, not '{Node}'");
        if (runs.Count > 1)
            return BuildPipelined(shape, runs, weightsFrom);
        foreach (var device in shape.Devices)
            if (!Pool.Contains(device))
                throw new ArgumentException($"replica {shape.Key}: device '{device}' is not on worker '{Node}' ({Pool})");
        var spec = shape.ToSpec(shape.Key);
        var watch = Stopwatch.StartNew();
        LiveReplica replica;
        LoadReport report;
        if (weightsFrom is null || weightsFrom == Node)
        {
            replica = Builder(_storage).BuildFromHost(spec);
            report = new LoadReport(shape.Key, "host copy", 0, 0, 0, watch.Elapsed.TotalSeconds, WasLoaded: true);
        }
        else
        {
            var peer = new PeerWeightStore(_grains.GetGrain<IWorkerGrain>(weightsFrom), weightsFrom);
            var (built, _, transfer) = Builder(peer).Build(spec, copyFromPeers: true, ShardTransfer.Instance);
            replica = built;
            Interlocked.Add(ref _bytesReceived, peer.BytesReceived);
            report = new LoadReport(shape.Key, $"worker {weightsFrom}", peer.BytesReceived,
                transfer.BytesFromPeers + transfer.BytesFromSameDevice, 0, watch.Elapsed.TotalSeconds, WasLoaded: true);
        }
        Register(shape.Key, replica);
        _logger.LogInformation("worker {Node}: loaded {Replica} from {Origin} in {Seconds:F2}s ({Bytes} B over the network)",
            Node, shape.Key, report.Origin, report.Seconds, report.BytesFromPeerWorker);
        return report;
    }

    /// <summary>
    /// A replica whose pipeline stages are on several workers: this worker runs its engine and its
    /// first run of stages, and each later run is built on its worker first (<see cref="LoadStagesAsync"/>);
    /// a step passes the activations worker to worker (<see cref="RemoteStageRun"/>).
    /// </summary>
    private LoadReport BuildPipelined(ReplicaShape shape, IReadOnlyList<(string Node, IndexRange Stages)> runs, string? weightsFrom)
    {
        var watch = Stopwatch.StartNew();
        string build = Guid.NewGuid().ToString("N")[..8];
        var rest = new List<IStageRun>();
        ParallelLlama? head = null;
        bool started = false; // from then on the replica owns the runs
        long bytesFromPeers = 0;
        try
        {
            foreach (var (node, stages) in runs.Skip(1))
            {
                var worker = _grains.GetGrain<IWorkerGrain>(node);
                string runKey = $"{shape.Key}#stages{stages.Start}-{stages.End}@{Node}#{build}";
                var loaded = worker.LoadStages(shape, stages.Start, stages.Count, runKey, Node, weightsFrom).GetAwaiter().GetResult();
                bytesFromPeers += loaded.BytesFromPeerWorker;
                rest.Add(new RemoteStageRun(worker, node, runKey, stages, why => Broken(shape.Key, why)));
            }
            var (source, origin, peer) = WeightSource(weightsFrom);
            head = ParallelLlama.Create(_model.Config, DevicesOf(shape, runs[0].Stages), shape.Tp, shape.Pp, source, _model.Model.DType, stages: runs[0].Stages);
            var pipelined = new PipelinedLlama(head, rest);
            var replica = Builder(_storage).Start(shape.ToSpec(shape.Key), pipelined);
            started = true;
            Register(shape.Key, replica);
            bytesFromPeers += peer?.BytesReceived ?? 0;
            Interlocked.Add(ref _bytesReceived, peer?.BytesReceived ?? 0);
            var report = new LoadReport(shape.Key, $"{origin}; stages across workers: {string.Join(", ", runs.Select(r => $"{r.Stages} on {r.Node}"))}",
                bytesFromPeers, 0, 0, watch.Elapsed.TotalSeconds, WasLoaded: true);
            _logger.LogInformation("worker {Node}: loaded {Replica} ({Origin}) in {Seconds:F2}s", Node, shape.Key, report.Origin, report.Seconds);
            return report;
        }
        catch when (!started)
        {
            head?.Dispose();
            foreach (var run in rest)
                run.Dispose();
            throw;
        }
    }

    /// <summary>The single-process builder over this worker's devices, with this worker's engine arguments.</summary>
    private ReplicaBuilder Builder(IWeightStore storage) => new(_model, storage, Pool,
        new PlanRuntimeOptions { Engine = _options.Engine, ServedName = _options.ServedName, Devices = Pool, StepObserver = _options.StepObserver }, Clock);

    /// <summary>Puts a built replica in service; a second build of the key (which the loading map prevents) is stopped.</summary>
    private void Register(string key, LiveReplica replica)
    {
        if (_replicas.TryAdd(key, replica))
            return;
        replica.StopAsync().GetAwaiter().GetResult();
        throw new InvalidOperationException($"replica {key} was loaded twice on worker '{Node}'");
    }

    /// <summary>A remote run of the replica failed: take the replica out, so its requests resume elsewhere and the controller rebuilds it.</summary>
    private void Broken(string key, string why)
    {
        if (Unload(key))
            _logger.LogWarning("worker {Node}: replica {Replica} lost a pipeline stage ({Why}): unloaded", Node, key, why);
    }

    private PoolDevice[] DevicesOf(ReplicaShape shape, IndexRange stages) =>
        shape.DevicesOf(stages).Select(id => Pool.Contains(id) ? Pool[id]
            : throw new ArgumentException($"replica {shape.Key}: device '{id}' of stages {stages} is not on worker '{Node}' ({Pool})")).ToArray();

    /// <summary>Where a build's weights come from: this worker's host copy, or a peer worker in chunks.</summary>
    private (OServe.Models.Loading.IWeightSource Source, string Origin, PeerWeightStore? Peer) WeightSource(string? weightsFrom)
    {
        if (weightsFrom is null || weightsFrom == Node)
            return (_hostWeights, "host copy", null);
        var peer = new PeerWeightStore(_grains.GetGrain<IWorkerGrain>(weightsFrom), weightsFrom);
        return (peer.Open(), $"worker {weightsFrom}", peer);
    }

    /// <summary>
    /// Builds stages <paramref name="stages"/> of <paramref name="shape"/> here for the worker
    /// <paramref name="headNode"/> that runs the replica's engine (a second call with the key is a no-op).
    /// </summary>
    public Task<LoadReport> LoadStagesAsync(ReplicaShape shape, IndexRange stages, string runKey, string headNode, string? weightsFrom) => Task.Run(() =>
    {
        var (source, origin, peer) = WeightSource(weightsFrom);
        var report = _stageRuns.Load(shape, stages, DevicesOf(shape, stages), runKey, headNode, source, origin);
        long received = peer?.BytesReceived ?? 0;
        Interlocked.Add(ref _bytesReceived, received);
        return report with { BytesFromPeerWorker = received };
    });

    public void CreateStageCache(string runKey, int numBlocks, int blockSize) => _stageRuns.CreateCache(runKey, numBlocks, blockSize);

    /// <summary>One step of a held run (one at a time: the replica's engine loop sends them in order).</summary>
    public WireTensor RunStages(string runKey, WireChunk[] batch, WireTensor hidden) => _stageRuns.Run(runKey, batch, hidden);

    public bool UnloadStages(string runKey) => _stageRuns.Unload(runKey);

    /// <summary>Out of service now; its admitted requests finish, then its weights and cache are freed. False when not loaded.</summary>
    public bool Unload(string key)
    {
        if (!_replicas.TryRemove(key, out var replica))
            return false;
        replica.IsRetired = true;
        StopRetired(key, replica);
        _logger.LogInformation("worker {Node}: unloading {Replica} (its running requests finish first)", Node, key);
        return true;
    }

    /// <summary>
    /// Out of service now, its requests moved out: each stream ends with <see cref="WorkerEvent.Moved"/>
    /// and the request's KV entries wait here under the ticket (<see cref="OpenKv"/>); a started
    /// request with at most <paramref name="finishInPlaceMaxSteps"/> steps left finishes here. Then
    /// the replica's memory is freed.
    /// </summary>
    public async Task<RetireReport> RetireAsync(string key, int finishInPlaceMaxSteps)
    {
        if (!_replicas.TryRemove(key, out var replica))
            return new RetireReport(false, 0, 0, 0, 0);
        replica.IsRetired = true;
        IReadOnlyList<MigratingRequest> moving;
        try
        {
            moving = await replica.Engine.DetachAllAsync(withKv: true, finishInPlaceMaxSteps).ConfigureAwait(false);
        }
        finally
        {
            StopRetired(key, replica); // what stays finishes, then the memory goes
        }
        int withKv = 0;
        long parked = 0;
        foreach (var m in moving)
        {
            var kv = m.TakeKv();
            var ticket = kv is null ? new KvTicket(Node, 0, 0, 0) : new KvTicket(Node, _parking.Park(kv), kv.NumTokens, kv.Bytes);
            if (kv is not null)
                (withKv, parked) = (withKv + 1, parked + kv.Bytes);
            m.HandOff(new RequestMovedException(ticket));
        }
        Interlocked.Add(ref _movedOut, moving.Count);
        Interlocked.Add(ref _movedOutWithKv, withKv);
        var left = replica.Engine.Snapshot();
        int inPlace = left.NumRequestsRunning + left.NumRequestsWaiting;
        _logger.LogInformation("worker {Node}: retiring {Replica}: {Moved} request(s) moved out ({WithKv} with {Bytes} B of KV parked), {InPlace} finishing here",
            Node, key, moving.Count, withKv, parked, inPlace);
        return new RetireReport(true, moving.Count, withKv, parked, inPlace);
    }

    private void StopRetired(string key, LiveReplica replica) =>
        _retiring[key] = Task.Run(async () =>
        {
            try { await replica.StopAsync().ConfigureAwait(false); }
            catch (Exception error) { _logger.LogError(error, "worker {Node}: stopping {Replica} failed", Node, key); }
            finally { _retiring.TryRemove(key, out _); }
        });

    /// <summary>
    /// One generation on replica <paramref name="key"/>; the stream ends with the finish event, or
    /// with <see cref="WorkerEvent.Moved"/> when the replica retires and moves the request out, and
    /// leaving it early aborts the request. A moved request (<see cref="WorkerRequest.KvFrom"/>)
    /// continues from its KV entries when they can be fetched, else recomputes its prompt.
    /// </summary>
    public async IAsyncEnumerable<WorkerEvent> GenerateAsync(string key, WorkerRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!_replicas.TryGetValue(key, out var replica))
            throw new ReplicaUnavailableException($"replica {key} is not loaded on worker '{Node}'");
        var ticket = request.KvFrom;
        var kv = ticket is { NumTokens: > 0 } ? await FetchKvAsync(ticket, cancellationToken).ConfigureAwait(false) : null;
        IAsyncEnumerable<GenerationEvent> events;
        // Not admitted: the engine has freed the KV, and the request recomputes wherever it goes next
        // (a ticket of another worker stays parked there, for that next try, until released or expired).
        try
        {
            events = replica.Engine.GenerateAsync(request.ToGenerationRequest(), kv, cancellationToken);
        }
        catch (AdmissionRejectedException error)
        {
            throw Unavailable(error);
        }
        if (ticket is not null)
        {
            Interlocked.Increment(ref _movedIn);
            if (kv is not null)
                Interlocked.Increment(ref _resumedFromKv);
            if (ticket.Id != 0 && ticket.Node != Node)
                _ = ReleasePeerKvAsync(ticket);
        }
        await using var stream = events.GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            KvTicket? movedTo = null;
            try
            {
                if (!await stream.MoveNextAsync().ConfigureAwait(false))
                    yield break;
            }
            catch (RequestMovedException moved)
            {
                movedTo = moved.Ticket;
            }
            if (movedTo is not null)
            {
                yield return WorkerEvent.MovedTo(movedTo);
                yield break;
            }
            yield return WorkerEvent.Of(stream.Current);
        }

        Exception Unavailable(Exception error) => replica.IsRetired
            ? new ReplicaUnavailableException($"replica {key} on worker '{Node}' is being unloaded")
            : error;
    }

    /// <summary>A moved request's KV entries: taken whole when parked here, else read from their worker in chunks; null (recompute) when they cannot be had.</summary>
    private async Task<KvBlocks?> FetchKvAsync(KvTicket ticket, CancellationToken cancellationToken)
    {
        if (ticket.Node == Node)
            return _parking.TakeLocal(ticket.Id);
        var watch = Stopwatch.StartNew();
        try
        {
            var peer = _grains.GetGrain<IWorkerGrain>(ticket.Node);
            if (await peer.OpenKv(ticket.Id).WaitAsync(cancellationToken).ConfigureAwait(false) is not { } wire)
            {
                _logger.LogWarning("worker {Node}: KV ticket {Ticket} of worker {Peer} is gone: the request recomputes its prompt", Node, ticket.Id, ticket.Node);
                return null;
            }
            var header = wire.ToHeader();
            var bytes = new byte[header.Bytes];
            int chunk = _options.WeightChunkBytes;
            var offsets = new List<long>();
            for (long offset = 0; offset < bytes.Length; offset += chunk)
                offsets.Add(offset);
            foreach (var batch in offsets.Chunk(4))
            {
                var parts = await Task.WhenAll(batch.Select(o => peer.ReadKvChunk(ticket.Id, o, (int)Math.Min(chunk, bytes.Length - o)))).ConfigureAwait(false);
                for (int i = 0; i < batch.Length; i++)
                    parts[i].CopyTo(bytes.AsSpan((int)batch[i]));
            }
            var kv = KvBlocks.FromWire(_model.Config, header, bytes);
            Interlocked.Add(ref _kvBytesReceived, bytes.Length);
            _logger.LogDebug("worker {Node}: fetched {Bytes} B of KV ({Tokens} tokens) from {Peer} in {Ms:F1} ms", Node, bytes.Length, header.NumTokens, ticket.Node, watch.Elapsed.TotalMilliseconds);
            return kv;
        }
        catch (Exception error) when (!cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning("worker {Node}: fetching KV ticket {Ticket} from worker {Peer} failed ({Error}): the request recomputes its prompt",
                Node, ticket.Id, ticket.Node, error.Message);
            return null;
        }
    }

    private async Task ReleasePeerKvAsync(KvTicket ticket)
    {
        try { await _grains.GetGrain<IWorkerGrain>(ticket.Node).ReleaseKv(ticket.Id).ConfigureAwait(false); }
        catch (Exception) { } // that worker is gone, and its parked entries with it; else they expire
    }

    /// <summary>The header of a parked request's KV bytes (made on the first open), null when not parked here.</summary>
    public WireKvHeader? OpenKv(long ticket) => _parking.Open(ticket);

    public byte[] ReadKvChunk(long ticket, long offset, int length)
    {
        if (length < 0 || length > _options.WeightChunkBytes)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"a chunk is at most {_options.WeightChunkBytes} bytes");
        var chunk = _parking.Read(ticket, offset, length);
        Interlocked.Add(ref _kvBytesSent, chunk.Length);
        return chunk;
    }

    public void ReleaseKv(long ticket) => _parking.Release(ticket);

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
        _parking.Dispose();
        _stageRuns.Dispose();
    }
}

/// <summary>Ends a request's stream on a retiring replica: it continues elsewhere, its KV entries parked under <see cref="Ticket"/>.</summary>
internal sealed class RequestMovedException(KvTicket ticket)
    : Exception($"the request moved out of its retiring replica (KV ticket {ticket.Id} on worker '{ticket.Node}', {ticket.NumTokens} tokens)")
{
    public KvTicket Ticket { get; } = ticket;
}
