using Orleans;
using Orleans.Concurrency;

namespace OServe.Engine.Distributed;

/// <summary>
/// One node's worker, keyed by the node name (<c>node1</c>) and activated only on the silo that
/// runs <c>oserve worker --node node1</c> (<see cref="NodePlacementAttribute"/> on the grain class). The grain is a
/// facade: the node's devices, model and replicas live in the silo's <see cref="WorkerNode"/>, so
/// a grain deactivation loses nothing and only the process's death takes the replicas with it.
/// </summary>
public interface IWorkerGrain : IGrainWithStringKey
{
    [AlwaysInterleave]
    Task<WorkerStatus> GetStatus();

    /// <summary>
    /// Builds the replica <paramref name="shape"/> unless it is loaded already. Its weights come
    /// from the shards this node's devices hold, then from <paramref name="weightsFrom"/>'s worker
    /// in chunks (hot copy across nodes) when given, else from this worker's host copy.
    /// </summary>
    [ResponseTimeout("00:05:00")]
    Task<LoadReport> LoadReplica(ReplicaShape shape, string? weightsFrom);

    /// <summary>Takes the replica out of service at once (new requests get <see cref="ReplicaUnavailableException"/>); its running requests finish, then its memory is freed.</summary>
    Task<bool> UnloadReplica(string key);

    /// <summary>
    /// Takes the replica out of service at once and moves its requests out: each one's stream ends
    /// with <see cref="WorkerEvent.Moved"/>, its KV entries parked here under the ticket for the
    /// worker that continues it (<see cref="OpenKv"/>). A started request with at most
    /// <paramref name="finishInPlaceMaxSteps"/> engine steps left finishes here. Then its memory is freed.
    /// </summary>
    [ResponseTimeout("00:01:00")]
    Task<RetireReport> RetireReplica(string key, int finishInPlaceMaxSteps);

    /// <summary>
    /// Builds stages [<paramref name="firstStage"/>, +<paramref name="numStages"/>) of <paramref name="shape"/>
    /// here under <paramref name="runKey"/> (unique per build): a run of a replica whose first stage
    /// and engine are on worker <paramref name="headNode"/>. Weights as <see cref="LoadReplica"/>.
    /// Its KV cache comes with <see cref="CreateStageCache"/>.
    /// </summary>
    [ResponseTimeout("00:05:00")]
    Task<LoadReport> LoadStages(ReplicaShape shape, int firstStage, int numStages, string runKey, string headNode, string? weightsFrom);

    /// <summary>The run's KV cache, as many blocks of as many tokens as the replica's first stage has.</summary>
    [ResponseTimeout("00:01:00")]
    Task CreateStageCache(string runKey, int numBlocks, int blockSize);

    /// <summary>One step of the run's stages from the previous stage's activations: the next stage's activations, or the logits from the last stage.</summary>
    [ResponseTimeout("00:01:00")]
    Task<WireTensor> RunStages(string runKey, WireChunk[] batch, WireTensor hidden);

    /// <summary>Frees the run (its replica was unloaded). False when not held.</summary>
    Task<bool> UnloadStages(string runKey);

    /// <summary>What the parked KV entries of <paramref name="ticket"/> hold, null when there are none (never parked, released, or expired).</summary>
    [AlwaysInterleave, ResponseTimeout("00:01:00")]
    Task<WireKvHeader?> OpenKv(long ticket);

    /// <summary>One chunk of a parked KV entry's bytes (<see cref="OServe.Models.Parallelism.KvWire"/>'s layout), as weights go.</summary>
    [AlwaysInterleave, ResponseTimeout("00:01:00")]
    Task<byte[]> ReadKvChunk(long ticket, long offset, int length);

    /// <summary>The request continues elsewhere: its parked KV entries are freed.</summary>
    [AlwaysInterleave, OneWay]
    Task ReleaseKv(long ticket);

    /// <summary>Streams one generation on the replica <paramref name="key"/>; leaving the enumeration aborts it.</summary>
    IAsyncEnumerable<WorkerEvent> Generate(string key, WorkerRequest request, CancellationToken cancellationToken = default);

    /// <summary>The tensors this worker can send to a peer building a replica (its host copy of the model).</summary>
    [AlwaysInterleave, ResponseTimeout("00:01:00")]
    Task<WeightEntry[]> GetWeightIndex();

    /// <summary>One chunk of a tensor's bytes: shard send/receive goes in chunks so no message is large.</summary>
    [AlwaysInterleave, ResponseTimeout("00:01:00")]
    Task<byte[]> ReadWeightChunk(string name, long offset, int length);
}

/// <summary>
/// The cluster's one plan controller (key: the Orleans cluster id). It keeps the target plan (what
/// the operator or the planner asked for) and the plan in force (the target restricted to the
/// replicas that live workers hold) in grain storage, so a front end that restarts finds the
/// cluster's plan; it reconciles the two every half second against Orleans membership.
/// </summary>
public interface IClusterControllerGrain : IGrainWithStringKey
{
    /// <summary>
    /// Installs <paramref name="planYaml"/> as the target unless the cluster already has one, and
    /// returns the view. <paramref name="knownEpoch"/>: the last epoch the caller saw, so a controller
    /// that lost its storage and is re-seeded by a front end keeps epochs increasing.
    /// </summary>
    [ResponseTimeout("00:05:00")]
    Task<ClusterPlanView> Initialize(string planYaml, int knownEpoch);

    [AlwaysInterleave]
    Task<ClusterPlanView> GetPlan();

    /// <summary>A front end's arrivals per request type: the workload the controller re-plans for when a worker dies.</summary>
    [AlwaysInterleave, OneWay]
    Task ReportArrivals(ArrivalReport report);

    /// <summary>Switches the cluster to <paramref name="planYaml"/> make-before-break; on a failed build, rolls back and reports why.</summary>
    [ResponseTimeout("00:05:00")]
    Task<ClusterSwitchReport> Apply(string planYaml);
}

/// <summary>The replica is not (or no longer) loaded on this worker: the front end routes the request elsewhere.</summary>
[GenerateSerializer]
public sealed class ReplicaUnavailableException : Exception
{
    public ReplicaUnavailableException(string message) : base(message) { }
}
