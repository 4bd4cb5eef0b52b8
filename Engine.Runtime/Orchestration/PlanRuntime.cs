using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Engine.Serving;
using OServe.Models;
using OServe.Models.Parallelism;
using ModelCard = OServe.Contracts.ModelCard;

namespace OServe.Engine.Orchestration;

/// <summary>
/// The multi-replica engine: runs the replicas a <see cref="Plan"/> lists (several configurations
/// side by side) behind one <see cref="IInferenceEngine"/>, so the HTTP server serves it unchanged.
/// Each request is typed by (prompt length, max_tokens) and routed by the plan's weights to the
/// least-loaded replica of its type (<see cref="RoutingPolicy{TReplica}"/>). <see cref="ApplyAsync"/>
/// switches to a new plan live (<see cref="PlanSwitch"/>).
/// </summary>
public sealed class PlanRuntime : IInferenceEngine, IRequestMetricsSource, IMetricsContributor, IAsyncDisposable
{
    private readonly ReplicaBuilder _builder;
    private readonly SemaphoreSlim _switchGate = new(1, 1);
    private readonly ConcurrentDictionary<string, Tracked> _tracked = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<SwitchReport> _history = new();
    private readonly ServedTokenCounters _tokens = new();
    private volatile Deployment _deployment;
    private bool _disposed;

    private PlanRuntime(Cluster cluster, ModelCard card, LoadedModel model, IWeightStore storage, PlanRuntimeOptions options)
    {
        Cluster = cluster;
        ModelCard = card;
        Options = options;
        Logger = options.Logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        Devices = options.Devices ?? DevicePool.Logical(cluster);
        _builder = new ReplicaBuilder(model, storage, Devices, options, Clock);
        ModelName = options.ServedName ?? model.Name;
        MaxModelLength = LocalEngineBuilder.SchedulerConfigFor(model, options.Engine).MaxModelLen;
        _deployment = Deployment.Empty;
    }

    /// <summary>
    /// Validates <paramref name="plan"/> against <paramref name="cluster"/> and the model's own card
    /// (throws <see cref="PlanRejectedException"/>), then builds its replicas from the loaded model.
    /// <paramref name="storage"/> is where a cold reload reads the weights. The caller keeps owning
    /// <paramref name="model"/>: every replica holds its own copy.
    /// </summary>
    public static PlanRuntime Start(Plan plan, Cluster cluster, LoadedModel model, IWeightStore storage, PlanRuntimeOptions? options = null)
    {
        options ??= new PlanRuntimeOptions();
        var card = ModelCardOf.Llama(model.Config, options.ServedName ?? model.Name, model.Model.DType);
        var runtime = new PlanRuntime(cluster, card, model, storage, options);
        runtime.Check(plan, null);
        var replicas = new List<LiveReplica>();
        try
        {
            foreach (var spec in plan.Replicas)
                replicas.Add(runtime._builder.BuildFromHost(spec));
        }
        catch
        {
            foreach (var r in replicas) r.StopAsync().GetAwaiter().GetResult();
            throw;
        }
        runtime.Install(plan, replicas);
        runtime.Logger.LogInformation("plan v{Version}: {Replicas}", plan.Version, string.Join(", ", replicas));
        return runtime;
    }

    public Cluster Cluster { get; }

    /// <summary>The served model's planning card, derived from its config.</summary>
    public ModelCard ModelCard { get; }

    public PlanRuntimeOptions Options { get; }

    /// <summary>The devices replicas occupy, by the plan's device ids.</summary>
    public DevicePool Devices { get; }
    public IClock Clock { get; } = new SystemClock();
    public SwitchMetrics Metrics { get; } = new();
    internal ILogger Logger { get; }
    internal ReplicaBuilder Builder => _builder;

    public Plan Current => _deployment.Plan;

    /// <summary>The replicas of the plan in force, in plan order.</summary>
    public IReadOnlyList<LiveReplica> Replicas => _deployment.Replicas;

    /// <summary>The last switches (at most 32), oldest first.</summary>
    public IReadOnlyList<SwitchReport> History => _history.ToArray();

    public string ModelName { get; }
    public int MaxModelLength { get; }
    public int? VocabSize => _builder.Tokenizer.VocabSize;

    public event Action<RequestMetrics>? RequestFinished;

    /// <summary>Raised after every switch attempt that got past validation.</summary>
    public event Action<SwitchReport>? Switched;

    public int? MaxTokenBytes => _builder.Tokenizer.MaxTokenBytes;

    public IReadOnlyList<int> Encode(string text, bool addBos) => _builder.Tokenizer.Encode(text, addBos);

    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken) =>
        _builder.Tokenizer.Encode(text, addBos, cancellationToken);

    public byte[] TokenBytes(int tokenId) => _builder.Tokenizer.TokenBytes(tokenId);

    public string Decode(IReadOnlyList<int> tokenIds) => _builder.Tokenizer.Decode(tokenIds);

    /// <summary>The plan's request type a request of this shape is served as; -1 when the plan has none.</summary>
    public int Classify(int promptTokens, int maxTokens) => _deployment.Routing.Classify(promptTokens, maxTokens);

    /// <summary>Switches to <paramref name="next"/> live with the runtime's default <see cref="SwitchOptions"/>.</summary>
    public Task<SwitchReport> ApplyAsync(Plan next, CancellationToken cancellationToken = default) =>
        ApplyAsync(next, Options.Switch, cancellationToken);

    /// <summary>
    /// Switches to <paramref name="next"/> while serving. Throws <see cref="PlanRejectedException"/>
    /// (nothing changed) when the plan is invalid for this cluster and model or not buildable here.
    /// A failure while building the new replicas rolls back: the report says
    /// <see cref="SwitchOutcome.RolledBack"/> and the old plan never stopped serving. One switch at a time.
    /// </summary>
    public async Task<SwitchReport> ApplyAsync(Plan next, SwitchOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(options);
        await _switchGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                Check(next, null);
            }
            catch (PlanRejectedException)
            {
                Metrics.RecordRejected();
                throw;
            }
            var report = await new PlanSwitch(this, _deployment, next, options).RunAsync(cancellationToken).ConfigureAwait(false);
            Metrics.Record(report);
            _history.Enqueue(report);
            while (_history.Count > 32) _history.TryDequeue(out _);
            Logger.LogInformation("switch v{From} -> v{To}: {Outcome} in {Seconds:F3}s (kept {Kept}, started {Started}, stopped {Stopped}, " +
                "{Peer} B from peers, {Storage} B from storage, {Migrated} requests moved with {Kv} B of KV){Error}",
                report.FromVersion, next.Version, report.Outcome, report.TotalSeconds, report.NumKept, report.NumStarted, report.NumStopped,
                report.BytesFromPeers, report.BytesFromStorage, report.NumRequestsMigrated, report.KvBytesMoved,
                report.Error is null ? "" : ": " + report.Error);
            Switched?.Invoke(report);
            return report;
        }
        finally
        {
            _switchGate.Release();
        }
    }

    /// <summary>Checks a plan as <see cref="ApplyAsync"/> would, without applying it; empty when it would be accepted.</summary>
    public IReadOnlyList<ContractError> Validate(Plan plan, SourceMap? lines = null)
    {
        lines ??= SourceMap.None("plan");
        var errors = PlanChecks.Validate(plan, Cluster, ModelCard, lines).ToList();
        errors.AddRange(_builder.Unsupported(plan).Select(u => lines.Error(u.Field, u.Message)));
        if (plan.Replicas.Count == 0)
            errors.Add(lines.Error("replicas", "the plan has no replicas: requests would have nowhere to go"));
        var current = _deployment;
        if (!ReferenceEquals(current, Deployment.Empty) && plan.Version <= current.Plan.Version)
            errors.Add(lines.Error("version", $"{plan.Version} does not increase on the plan in force (v{current.Plan.Version}): a stale plan must not replace a newer one"));
        return errors;
    }

    private void Check(Plan plan, SourceMap? lines)
    {
        var errors = Validate(plan, lines);
        if (errors.Count > 0) throw new PlanRejectedException(errors);
    }

    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ArrivalTime <= 0)
            request = request with { ArrivalTime = Clock.Now };
        var tracked = new Tracked();
        if (!_tracked.TryAdd(request.RequestId, tracked))
            throw new ArgumentException($"request id '{request.RequestId}' is already in flight", "request_id");
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                var deployment = _deployment;
                var replica = deployment.Routing.Route(request.PromptTokens?.Count ?? 0, request.Sampling?.MaxTokens ?? 0);
                tracked.MoveTo(replica);
                try
                {
                    var events = replica.Engine.GenerateAsync(request, cancellationToken);
                    return Follow(request.RequestId, tracked, events);
                }
                catch (AdmissionRejectedException) when (replica.IsRetired && attempt < 8)
                {
                    // Routed just before a switch retired the replica: the new plan takes it.
                    tracked.Leave();
                }
                catch
                {
                    tracked.Leave();
                    throw;
                }
            }
        }
        catch
        {
            _tracked.TryRemove(request.RequestId, out _);
            throw;
        }
    }

    private async IAsyncEnumerable<GenerationEvent> Follow(string requestId, Tracked tracked, IAsyncEnumerable<GenerationEvent> events,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        try
        {
            await foreach (var ev in events.WithCancellation(cancellationToken).ConfigureAwait(false))
                yield return ev;
        }
        finally
        {
            tracked.Finish();
            _tracked.TryRemove(new KeyValuePair<string, Tracked>(requestId, tracked));
        }
    }

    /// <summary>The replica of the plan in force that a request of this shape goes to now.</summary>
    internal LiveReplica RouteFor(int promptTokens, int maxTokens) => _deployment.Routing.Route(promptTokens, maxTokens);

    /// <summary>Moves the load accounting of requests that a switch handed to another replica.</summary>
    internal void Moved(string requestId, LiveReplica to)
    {
        if (_tracked.TryGetValue(requestId, out var tracked))
            tracked.Move(to);
    }

    public EngineSnapshot Snapshot()
    {
        var replicas = _deployment.Replicas;
        int running = 0, waiting = 0;
        double usage = 0;
        foreach (var r in replicas)
        {
            var s = r.Engine.Snapshot();
            running += s.NumRequestsRunning;
            waiting += s.NumRequestsWaiting;
            usage += s.KvCacheUsage;
        }
        // Gauges describe the deployment in force; token counters everything served since start.
        var (prompt, generated) = _tokens.Totals();
        return new EngineSnapshot(running, waiting, replicas.Count > 0 ? usage / replicas.Count : 0, prompt, generated);
    }

    public void WriteMetrics(PrometheusText text, (string Name, string Value)[] labels) =>
        Metrics.Write(text, labels, Current.Version, Replicas);

    /// <summary>A replica a switch stopped: its final token counts stay in the totals, the replica goes.</summary>
    internal void Retired(LiveReplica replica) => _tokens.Retire(replica);

    /// <summary>Makes <paramref name="plan"/> the one in force: new requests route by it from now on.</summary>
    internal void Install(Plan plan, IReadOnlyList<LiveReplica> replicas)
    {
        _tokens.Add(replicas);
        var byId = replicas.ToDictionary(r => r.Id, StringComparer.Ordinal);
        foreach (var r in replicas)
        {
            r.Engine.RequestFinished -= OnRequestFinished;
            r.Engine.RequestFinished += OnRequestFinished;
        }
        _deployment = new Deployment(plan, replicas, new RoutingPolicy<LiveReplica>(plan, id => byId[id], r => r.Outstanding));
    }

    private void OnRequestFinished(RequestMetrics metrics) => RequestFinished?.Invoke(metrics);

    public async ValueTask DisposeAsync()
    {
        await _switchGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var r in _deployment.Replicas)
                r.IsRetired = true;
            await Task.WhenAll(_deployment.Replicas.Select(r => r.StopAsync())).ConfigureAwait(false);
        }
        finally
        {
            _switchGate.Release();
        }
    }

    internal sealed record Deployment(Plan Plan, IReadOnlyList<LiveReplica> Replicas, RoutingPolicy<LiveReplica> Routing)
    {
        public static Deployment Empty { get; } = new(
            new Plan { Model = "", Cluster = "", RequestTypes = [], Replicas = [], Routing = [] }, [], null!);
    }

    /// <summary>Which replica a request counts against now; moves with the request, released once at its end.</summary>
    private sealed class Tracked
    {
        private LiveReplica? _replica;
        private bool _done;

        public void MoveTo(LiveReplica replica)
        {
            lock (this) { _replica = replica; }
            replica.AddOutstanding(1);
        }

        public void Leave()
        {
            LiveReplica? r;
            lock (this) { r = _replica; _replica = null; }
            r?.AddOutstanding(-1);
        }

        public void Move(LiveReplica to)
        {
            lock (this)
            {
                if (_done || _replica is null || ReferenceEquals(_replica, to)) return;
                _replica.AddOutstanding(-1);
                to.AddOutstanding(1);
                _replica = to;
            }
        }

        public void Finish()
        {
            lock (this)
            {
                if (_done) return;
                _done = true;
                _replica?.AddOutstanding(-1);
                _replica?.CountFinished();
            }
        }
    }
}
