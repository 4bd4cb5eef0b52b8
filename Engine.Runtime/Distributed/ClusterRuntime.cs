using System.Runtime.CompilerServices;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Execution;
using OServe.Engine.Serving;
using Orleans;

namespace OServe.Engine.Distributed;

/// <summary>
/// The front end's engine: the plan in force on the cluster (followed from the controller grain)
/// behind <see cref="IInferenceEngine"/>, so the OpenAI server serves it unchanged. A request is
/// routed by the plan's rule (<see cref="Scheduling.RoutingPolicy{TReplica}"/>) to a replica on
/// some worker and streamed back with an Orleans IAsyncEnumerable call. When that stream breaks
/// (the worker died, or the replica was unloaded) the request resumes on another replica from its
/// prompt plus the tokens already streamed (re-prefill), with max_tokens lowered by as many, so the
/// client sees one stream: no error, no token twice. Thread-safe.
/// </summary>
public sealed class ClusterRuntime : IInferenceEngine, IMetricsContributor, IAsyncDisposable
{
    private readonly IClusterClient _client;
    private readonly IEngineTokenizer _tokenizer;
    private readonly FrontEndOptions _options;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ClusterCounters _counters = new();
    private readonly StreamRegistry _streams = new();
    private readonly ArrivalReporter _arrivals = new();
    private volatile RemoteDeployment? _deployment;
    private volatile ClusterPlanView _view = new(0, null, null, [], [], null);
    private volatile WorkerStatus[] _statuses = [];
    private Task _pollLoop = Task.CompletedTask;
    private string? _lastTargetYaml, _inForceYaml;
    private int _inFlight;

    private ClusterRuntime(IClusterClient client, string clusterId, IEngineTokenizer tokenizer, string modelName, int maxModelLength,
        FrontEndOptions options, ILogger logger)
    {
        _client = client;
        Controller = client.GetGrain<IClusterControllerGrain>(clusterId);
        _tokenizer = tokenizer;
        ModelName = modelName;
        MaxModelLength = maxModelLength;
        _options = options;
        _logger = logger;
    }

    /// <summary>
    /// Connects to the cluster's controller, gives it <paramref name="initial"/> unless the cluster
    /// already has a plan (a front end that restarts keeps the cluster's), and follows the plan in force.
    /// </summary>
    public static async Task<ClusterRuntime> StartAsync(IClusterClient client, string clusterId, Plan initial, IEngineTokenizer tokenizer,
        string modelName, int maxModelLength, FrontEndOptions? options = null, ILogger? logger = null)
    {
        var runtime = new ClusterRuntime(client, clusterId, tokenizer, modelName, maxModelLength, options ?? new FrontEndOptions(),
            logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        var yaml = ContractYaml.Write(initial);
        var view = await runtime.Controller.Initialize(yaml, 0);
        if (view.TargetYaml != yaml)
            runtime._logger.LogWarning("the cluster already has a plan (epoch {Epoch}): keeping it; --plan was not applied (PUT /v1/plan switches)", view.Epoch);
        runtime.Install(view);
        runtime._pollLoop = Task.Run(() => runtime.PollAsync(runtime._stop.Token));
        return runtime;
    }

    public IClusterControllerGrain Controller { get; }
    public string ModelName { get; }
    public int MaxModelLength { get; }
    public int? VocabSize => _tokenizer.VocabSize;

    /// <summary>The plan in force as last seen, null before the cluster has a replica up.</summary>
    public Plan? Current => _deployment?.Plan;
    public ClusterPlanView View => _view;
    public RemoteDeployment? Deployment => _deployment;
    public IReadOnlyList<WorkerStatus> Workers => _statuses;
    public ClusterCounters Counters => _counters;

    public IReadOnlyList<int> Encode(string text, bool addBos) => _tokenizer.Encode(text, addBos);

    /// <summary>Switches the cluster (make-before-break, on the controller) and follows the result at once.</summary>
    public async Task<ClusterSwitchReport> ApplyAsync(Plan next)
    {
        var report = await Controller.Apply(ContractYaml.Write(next));
        await RefreshAsync();
        return report;
    }

    /// <summary>Reads the controller's view now (the poll loop does it every <see cref="FrontEndOptions.PlanPollInterval"/>).</summary>
    public async Task RefreshAsync() => await InstallAsync(await Controller.GetPlan());

    private async Task TryRefreshAsync()
    {
        try { await RefreshAsync(); }
        catch (Exception error) { _logger.LogDebug("plan refresh failed: {Error}", error.Message); } // the poll loop tries again
    }

    public IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken)
    {
        Validate(request);
        cancellationToken.ThrowIfCancellationRequested();
        if (Interlocked.Increment(ref _inFlight) > _options.AdmissionCapacity)
        {
            Interlocked.Decrement(ref _inFlight);
            throw new AdmissionRejectedException($"the front end holds {_options.AdmissionCapacity} requests; retry later", TimeSpan.FromSeconds(1));
        }
        _arrivals.Record(request.PromptTokens.Count, request.Sampling.MaxTokens);
        return FollowAsync(request, cancellationToken);
    }

    private async IAsyncEnumerable<GenerationEvent> FollowAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var delivered = new List<int>();
        var excluded = new Dictionary<string, DateTime>(StringComparer.Ordinal); // replica key -> avoided until
        DateTime? lostAt = null;
        bool lostByMove = false;   // lostAt is a switch moving the request, not a broken stream
        KvTicket? kvFrom = null; // moved off a retiring replica: its KV entries wait there
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                var replica = await PickAsync(request, excluded, lostAt ?? DateTime.UtcNow, cancellationToken);
                var wire = new WorkerRequest($"{request.RequestId}~{attempt}", [.. request.PromptTokens, .. delivered],
                    WireSampling.Of(request.Sampling) with
                    {
                        MaxTokens = request.Sampling.MaxTokens - delivered.Count,
                        SeedStreamOffset = request.Sampling.SeedStreamOffset + delivered.Count, // a seeded stream continues
                    })
                { ResumedOutputTokens = delivered.Count, KvFrom = kvFrom }; // the output text too (held-back text, a stop string across the resume)
                replica.AddOutstanding(1);
                // Cancelled by the client leaving, or by membership declaring the worker dead (see Install):
                // a dead worker's stream otherwise waits out Orleans' response timeout.
                using var streamStop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var registration = _streams.Register(replica.Node, streamStop);
                var stream = _client.GetGrain<IWorkerGrain>(replica.Node).Generate(replica.Key, wire, streamStop.Token).GetAsyncEnumerator(streamStop.Token);
                Exception? failure = null;
                KvTicket? moved = null;
                try
                {
                    while (true)
                    {
                        try
                        {
                            if (!await stream.MoveNextAsync().AsTask().WaitAsync(streamStop.Token))
                            {
                                failure = new EndOfStreamException($"worker {replica.Node} ended the stream of {wire.RequestId} without a finish reason");
                                break;
                            }
                        }
                        catch (Exception error) when (IsResumable(error, delivered.Count, attempt, cancellationToken))
                        {
                            failure = error;
                            break;
                        }
                        var e = stream.Current;
                        if (e.Moved is { } ticket)
                        {
                            moved = ticket; // the replica retired: go on where the plan in force says, with the KV
                            break;
                        }
                        kvFrom = null; // the stream is going: the ticket, if any, was used
                        if (e.Finish == FinishReason.Abort && e.TokenId < 0 && !cancellationToken.IsCancellationRequested)
                        {
                            // The worker ended the request, not the client: its silo is leaving (a graceful
                            // shutdown deactivates the grain) or the replica is going. Resume elsewhere.
                            failure = new OperationCanceledException($"worker {replica.Node} aborted {wire.RequestId}");
                            break;
                        }
                        if (e.TokenId >= 0)
                            delivered.Add(e.TokenId);
                        if (lostAt is { } since)
                        {
                            _counters.ObserveResumed(DateTime.UtcNow - since, lostByMove);
                            lostAt = null;
                        }
                        if (e.TokenId >= 0)
                            _counters.CountToken(delivered.Count == 1 ? request.PromptTokens.Count : 0);
                        yield return new GenerationEvent(request.RequestId, e.TokenId, e.TextDelta, e.Finish, request.PromptTokens.Count, delivered.Count);
                        if (e.Finish != FinishReason.None)
                            yield break;
                    }
                }
                finally
                {
                    _streams.Unregister(registration);
                    replica.AddOutstanding(-1);
                    await DisposeQuietlyAsync(stream);
                }
                if (moved is not null)
                {
                    // Moved out by a switch: no failure. The plan in force has changed; follow it now.
                    if (lostAt is null)
                        (lostAt, lostByMove) = (DateTime.UtcNow, true);
                    kvFrom = moved;
                    excluded[replica.Key] = DateTime.UtcNow + _options.SuspectFor;
                    _counters.CountMoved(moved.NumTokens > 0);
                    await TryRefreshAsync();
                    continue;
                }
                // The stream broke: resume elsewhere from what the client has, within the resume budget.
                if (lostAt is null)
                    (lostAt, lostByMove) = (DateTime.UtcNow, false);
                excluded[replica.Key] = DateTime.UtcNow + _options.SuspectFor;
                if (failure is not ReplicaUnavailableException)
                    replica.MarkSuspect(_options.SuspectFor);
                _counters.CountBreak();
                _logger.LogWarning("request {Request}: stream from {Replica} broke after {Tokens} token(s) ({Error}); resuming elsewhere",
                    request.RequestId, replica, delivered.Count, failure!.Message.Split('\n')[0]);
                if (DateTime.UtcNow - lostAt > _options.ResumeTimeout)
                    throw new TimeoutException($"request {request.RequestId} found no replica to resume on for {_options.ResumeTimeout.TotalSeconds:F0} s; last: {failure.Message}", failure);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(500, 50 << Math.Min(attempt, 4))), cancellationToken);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    // A bad request stays an error; a full queue before any token is the client's 429; the rest is a lost replica.
    private static bool IsResumable(Exception error, int numDelivered, int attempt, CancellationToken cancellationToken) =>
        !cancellationToken.IsCancellationRequested
        && error is not ArgumentException
        && !(error is AdmissionRejectedException && numDelivered == 0 && attempt == 0);

    private static async Task DisposeQuietlyAsync(IAsyncEnumerator<WorkerEvent> stream)
    {
        try
        {
            // Disposing tells a live worker to abort; a dead one cannot answer, so do not wait long.
            await stream.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(2));
        }
        catch (Exception)
        {
            // The worker is gone or the enumeration already ended there: nothing left to release.
        }
    }

    /// <summary>The replica for this request now, avoiding those that failed it; waits for a plan with one (a dead worker's replicas leave the plan once Orleans declares it dead).</summary>
    private async Task<RemoteReplica> PickAsync(GenerationRequest request, Dictionary<string, DateTime> excluded, DateTime since, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_deployment is { } d)
            {
                var now = DateTime.UtcNow;
                foreach (var key in excluded.Where(kv => kv.Value <= now).Select(kv => kv.Key).ToArray())
                    excluded.Remove(key);
                var routed = d.Routing.Route(request.PromptTokens.Count, request.Sampling.MaxTokens);
                if (Usable(routed, excluded))
                    return routed;
                var other = d.Replicas.Where(r => Usable(r, excluded)).MinBy(r => r.Outstanding);
                if (other is not null)
                    return other;
            }
            if (DateTime.UtcNow - since > _options.ResumeTimeout)
                throw new TimeoutException($"no replica could take request {request.RequestId} for {_options.ResumeTimeout.TotalSeconds:F0} s (plan epoch {_view.Epoch}, live workers: {string.Join(", ", _view.LiveNodes)})");
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        }
    }

    private static bool Usable(RemoteReplica r, Dictionary<string, DateTime> excluded) => !excluded.ContainsKey(r.Key) && !r.IsSuspect;

    private async Task PollAsync(CancellationToken cancellationToken)
    {
        var lastStatus = DateTime.MinValue;
        var lastReport = DateTime.UtcNow;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync();
                if (DateTime.UtcNow - lastReport >= _options.ArrivalReportInterval && _arrivals.TakeReport() is { } report)
                {
                    lastReport = DateTime.UtcNow;
                    try
                    {
                        await Controller.ReportArrivals(report); // one-way: the controller may be busy building a replica
                    }
                    catch
                    {
                        _arrivals.Unsent(report); // the controller's worker died: these counts go with the next report
                        throw;
                    }
                }
                if (DateTime.UtcNow - lastStatus >= _options.StatusPollInterval)
                {
                    lastStatus = DateTime.UtcNow;
                    var statuses = await Task.WhenAll(_view.LiveNodes.Select(TryStatusAsync));
                    _statuses = statuses.OfType<WorkerStatus>().ToArray();
                }
            }
            catch (Exception error)
            {
                // Stopping: a poll cut short is no failure of the front end's disposal.
                if (cancellationToken.IsCancellationRequested)
                    break;
                // The controller's worker died: Orleans activates it elsewhere on a later call.
                _logger.LogDebug("plan poll failed: {Error}", error.Message);
            }
            try { await Task.Delay(_options.PlanPollInterval, cancellationToken); }
            catch (OperationCanceledException) { break; }
        }
    }

    private async Task<WorkerStatus?> TryStatusAsync(string node)
    {
        try { return await _client.GetGrain<IWorkerGrain>(node).GetStatus().WaitAsync(TimeSpan.FromSeconds(2)); }
        catch (Exception) { return null; }
    }

    /// <summary>Follows the controller's view; a controller that lost its state (its storage went with a worker) gets the last target this front end saw.</summary>
    private async Task InstallAsync(ClusterPlanView view)
    {
        if (view.TargetYaml is null && _lastTargetYaml is { } known)
        {
            _logger.LogWarning("the cluster's controller came back without a plan (its storage was lost): giving it the last one this front end saw");
            view = await Controller.Initialize(known, _view.Epoch);
        }
        Install(view);
    }

    private void Install(ClusterPlanView view)
    {
        var previous = _deployment;
        var previousLive = _view.LiveNodes;
        _view = view;
        // Streams on workers that membership no longer holds live are dead: break them now so they resume.
        if (view.LiveNodes.Length > 0)
            foreach (var node in previousLive.Except(view.LiveNodes))
                if (_streams.CancelNode(node) is > 0 and var n)
                    _logger.LogWarning("worker {Node} is no longer live: resuming its {Streams} stream(s) elsewhere", node, n);
        if (view.TargetYaml is not null)
            _lastTargetYaml = view.TargetYaml;
        if (view.InForceYaml == _inForceYaml)
            return;
        if (view.InForceYaml is null)
        {
            // Nothing is up: keep the last deployment, whose streams fail and wait for the next plan, rather than none.
            _logger.LogWarning("no replica of the cluster's plan is up (live workers: {Workers})", string.Join(", ", view.LiveNodes));
            return;
        }
        var plan = ContractYaml.ParsePlan(view.InForceYaml, "plan in force").Value;
        _arrivals.Follow(plan);
        _deployment = RemoteDeployment.Of(view.Epoch, plan, previous);
        _inForceYaml = view.InForceYaml;
        _logger.LogInformation("plan in force: epoch {Epoch}, {Replicas}", view.Epoch, string.Join(", ", _deployment.Replicas));
    }

    private void Validate(GenerationRequest request) => RequestChecks.Validate(request, _tokenizer.VocabSize, MaxModelLength);

    /// <summary>Running and waiting requests and KV use summed over the workers' replicas (as of the last status poll); token totals as streamed by this front end.</summary>
    public EngineSnapshot Snapshot()
    {
        var replicas = _statuses.SelectMany(s => s.Replicas).Where(r => !r.IsRetiring).ToArray();
        return new EngineSnapshot(replicas.Sum(r => r.NumRunning), replicas.Sum(r => r.NumWaiting),
            replicas.Length > 0 ? replicas.Average(r => r.KvCacheUsage) : 0, _counters.PromptTokens, _counters.GeneratedTokens);
    }

    public void WriteMetrics(PrometheusText text, (string Name, string Value)[] labels) =>
        _counters.Write(text, labels, _view, _deployment, _statuses);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _pollLoop;
        _stop.Dispose();
    }
}
