using OServe.Contracts;
using OServe.Engine.Execution;
using Orleans;

namespace OServe.Engine.Distributed;

// What crosses the wire between the front end and the workers, as Orleans-serializable records.
// Plans travel as YAML text (the plan file format, parsed and checked by Contracts on arrival), so
// the wire has one plan format, the one people read and write.

/// <summary>A plan replica as a worker builds it. Its <see cref="Key"/> (devices, tp, pp) names it on the worker: the same shape under another plan id is the same replica, kept across switches.</summary>
[GenerateSerializer, Immutable]
public sealed record ReplicaShape(
    [property: Id(0)] string GpuType,
    [property: Id(1)] string[] Devices,
    [property: Id(2)] int Tp,
    [property: Id(3)] int Pp,
    [property: Id(4)] int MaxNumSeqs,
    [property: Id(5)] int MaxNumBatchedTokens)
{
    public string Key => $"tp{Tp}xpp{Pp}@{string.Join(",", Devices)}";

    /// <summary>The node named by the first device id (<c>node/index</c>): the worker that runs the replica's engine and its first pipeline stage.</summary>
    public string Node => NodeOf(Devices[0]);

    /// <summary>Every node the replica's devices are on (more than one when its pipeline stages are on several workers).</summary>
    public string[] Nodes => Devices.Select(NodeOf).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// The replica's pipeline stages grouped into runs of consecutive stages on one node, in stage
    /// order: one run when it lives on one worker. A stage's tp ranks must share a node (null
    /// otherwise, with the offending stage in <paramref name="error"/>).
    /// </summary>
    public IReadOnlyList<(string Node, OServe.Models.Parallelism.IndexRange Stages)>? StageRuns(out string? error)
    {
        error = null;
        var runs = new List<(string Node, OServe.Models.Parallelism.IndexRange Stages)>();
        for (int stage = 0; stage < Pp; stage++)
        {
            var nodes = Devices.Skip(stage * Tp).Take(Tp).Select(NodeOf).Distinct(StringComparer.Ordinal).ToArray();
            if (nodes.Length != 1)
            {
                error = $"stage {stage} has its tp ranks on nodes {string.Join(" and ", nodes)}: the ranks of a stage run on one worker (stages may be on different ones)";
                return null;
            }
            if (runs.Count > 0 && runs[^1].Node == nodes[0])
                runs[^1] = (nodes[0], runs[^1].Stages with { Count = runs[^1].Stages.Count + 1 });
            else
                runs.Add((nodes[0], new OServe.Models.Parallelism.IndexRange(stage, 1)));
        }
        return runs;
    }

    /// <summary>The devices of stages <paramref name="stages"/> (stage-major, as the plan lists them).</summary>
    public string[] DevicesOf(OServe.Models.Parallelism.IndexRange stages) => Devices.Skip(stages.Start * Tp).Take(stages.Count * Tp).ToArray();


    public static ReplicaShape Of(ReplicaSpec spec) =>
        new(spec.GpuType, spec.Devices.ToArray(), spec.Tp, spec.Pp, spec.MaxNumSeqs, spec.MaxNumBatchedTokens);

    public ReplicaSpec ToSpec(string id) => new()
    {
        Id = id, GpuType = GpuType, Devices = Devices, Tp = Tp, Pp = Pp,
        MaxNumSeqs = MaxNumSeqs, MaxNumBatchedTokens = MaxNumBatchedTokens,
    };

    public static string NodeOf(string deviceId)
    {
        int slash = deviceId.IndexOf('/');
        return slash > 0 ? deviceId[..slash] : deviceId;
    }
}

/// <summary>Sampling controls on the wire (<see cref="SamplingParams"/>).</summary>
[GenerateSerializer, Immutable]
public sealed record WireSampling(
    [property: Id(0)] int MaxTokens,
    [property: Id(1)] float Temperature,
    [property: Id(2)] float TopP,
    [property: Id(3)] int TopK,
    [property: Id(4)] ulong? Seed,
    [property: Id(5)] string[] Stop,
    [property: Id(6)] int[] StopTokenIds,
    [property: Id(7)] bool IgnoreEos)
{
    /// <summary><see cref="SamplingParams.SeedStreamOffset"/>: a resumed request's draws already taken.</summary>
    [Id(8)] public int SeedStreamOffset { get; init; }

    public static WireSampling Of(SamplingParams s) =>
        new(s.MaxTokens, s.Temperature, s.TopP, s.TopK, s.Seed, s.Stop.ToArray(), s.StopTokenIds.ToArray(), s.IgnoreEos) { SeedStreamOffset = s.SeedStreamOffset };

    public SamplingParams ToParams() => new()
    {
        MaxTokens = MaxTokens, Temperature = Temperature, TopP = TopP, TopK = TopK, Seed = Seed,
        Stop = Stop, StopTokenIds = StopTokenIds, IgnoreEos = IgnoreEos, SeedStreamOffset = SeedStreamOffset,
    };
}

/// <summary>
/// One generation on a worker. A resumed request (its first replica died) arrives with the tokens
/// already streamed appended to its prompt, MaxTokens lowered by as many, and their number in
/// <see cref="ResumedOutputTokens"/>: the worker re-prefills them and continues, its output text
/// (stop strings, held-back text) and its seeded sampling stream going on from them.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record WorkerRequest(
    [property: Id(0)] string RequestId,
    [property: Id(1)] int[] PromptTokens,
    [property: Id(2)] WireSampling Sampling)
{
    /// <summary>Of the prompt, the last this-many tokens are output already streamed (<see cref="GenerationRequest.ResumedOutputTokens"/>).</summary>
    [Id(3)] public int ResumedOutputTokens { get; init; }

    /// <summary>
    /// A request moved off a retiring replica: where its KV entries wait (<see cref="WorkerEvent.Moved"/>).
    /// The worker fetches them and computes only the rest of the prompt; when they cannot be had
    /// (that worker died, or the ticket expired) it computes the whole prompt, as for any resume.
    /// </summary>
    [Id(4)] public KvTicket? KvFrom { get; init; }

    public GenerationRequest ToGenerationRequest() => new(RequestId, PromptTokens, Sampling.ToParams()) { ResumedOutputTokens = ResumedOutputTokens };
}

/// <summary>One event of a worker's stream (<see cref="GenerationEvent"/> without the ids the front end already knows).</summary>
[GenerateSerializer, Immutable]
public sealed record WorkerEvent(
    [property: Id(0)] int TokenId,
    [property: Id(1)] string TextDelta,
    [property: Id(2)] int FinishReason,
    [property: Id(3)] int NumOutputTokens)
{
    public static WorkerEvent Of(GenerationEvent e) => new(e.TokenId, e.TextDelta, (int)e.FinishReason, e.NumOutputTokens);
    public FinishReason Finish => (FinishReason)FinishReason;

    /// <summary>
    /// The stream's last event when its replica retired and moved the request out (no token, no
    /// finish): the request goes on elsewhere from its prompt and the tokens streamed so far, with
    /// its KV entries waiting on this worker under the ticket.
    /// </summary>
    [Id(4)] public KvTicket? Moved { get; init; }

    public static WorkerEvent MovedTo(KvTicket ticket) => new(-1, "", (int)OServe.Engine.Execution.FinishReason.None, 0) { Moved = ticket };
}

/// <summary>
/// KV entries of a moved request parked on a worker (<see cref="IWorkerGrain.OpenKv"/>): the
/// worker, the ticket, how many tokens they cover (0: the request had none; it recomputes).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record KvTicket(
    [property: Id(0)] string Node,
    [property: Id(1)] long Id,
    [property: Id(2)] int NumTokens,
    [property: Id(3)] long Bytes);

/// <summary>What parked KV bytes hold (<see cref="OServe.Models.Parallelism.KvWire.Header"/>; dtype as TorchSharp's ScalarType number).</summary>
[GenerateSerializer, Immutable]
public sealed record WireKvHeader(
    [property: Id(0)] int NumTokens,
    [property: Id(1)] int NumLayers,
    [property: Id(2)] int NumKvHeads,
    [property: Id(3)] int HeadDim,
    [property: Id(4)] int DType)
{
    public static WireKvHeader Of(OServe.Models.Parallelism.KvWire.Header h) => new(h.NumTokens, h.NumLayers, h.NumKvHeads, h.HeadDim, (int)h.DType);
    public OServe.Models.Parallelism.KvWire.Header ToHeader() => new(NumTokens, NumLayers, NumKvHeads, HeadDim, (TorchSharp.torch.ScalarType)DType);
}

/// <summary>One chunk of a step (<see cref="OServe.Models.Kv.SequenceChunk"/>), sent to the workers that hold a replica's later stages.</summary>
[GenerateSerializer, Immutable]
public sealed record WireChunk(
    [property: Id(0)] int[] Tokens,
    [property: Id(1)] int StartPosition,
    [property: Id(2)] int[] BlockTable,
    [property: Id(3)] bool ReturnsAllLogits)
{
    public static WireChunk Of(OServe.Models.Kv.SequenceChunk c) => new(c.TokenIds.ToArray(), c.StartPosition, c.BlockTable.ToArray(), c.ReturnsAllLogits);
    public OServe.Models.Kv.SequenceChunk ToChunk() => new(Tokens, StartPosition, BlockTable) { ReturnsAllLogits = ReturnsAllLogits };
}

/// <summary>A tensor's bytes (activations between pipeline stages on different workers, or the last stage's logits), row-major.</summary>
[GenerateSerializer, Immutable]
public sealed record WireTensor(
    [property: Id(0)] long[] Shape,
    [property: Id(1)] int DType,
    [property: Id(2)] byte[] Bytes)
{
    public static WireTensor Of(TorchSharp.torch.Tensor t) => new(t.shape, (int)t.dtype, OServe.Models.Loading.TensorBytes.ToBytes(t));

    /// <summary>The tensor (host memory); <see cref="InvalidDataException"/> when the bytes are not its size.</summary>
    public TorchSharp.torch.Tensor ToTensor() => OServe.Models.Loading.TensorBytes.FromBytes(Bytes, (TorchSharp.torch.ScalarType)DType, Shape);
}

/// <summary>A replica loaded on a worker, with its engine's figures.</summary>
[GenerateSerializer, Immutable]
public sealed record ReplicaStatus(
    [property: Id(0)] string Key,
    [property: Id(1)] int NumRunning,
    [property: Id(2)] int NumWaiting,
    [property: Id(3)] double KvCacheUsage,
    [property: Id(4)] long GenerationTokensTotal,
    [property: Id(5)] bool IsRetiring);

/// <summary>A run of a replica's later pipeline stages held for the worker that runs the replica's engine (<see cref="IWorkerGrain.LoadStages"/>).</summary>
[GenerateSerializer, Immutable]
public sealed record StageRunStatus(
    [property: Id(0)] string RunKey,
    [property: Id(1)] string ReplicaKey,
    [property: Id(2)] string HeadNode,
    [property: Id(3)] int FirstStage,
    [property: Id(4)] int NumStages,
    [property: Id(5)] long Steps);

/// <summary>What a worker holds now: its node, devices, model and replicas.</summary>
[GenerateSerializer, Immutable]
public sealed record WorkerStatus(
    [property: Id(0)] string Node,
    [property: Id(1)] string[] Devices,
    [property: Id(2)] string ModelName,
    [property: Id(3)] long ModelParameters,
    [property: Id(4)] ReplicaStatus[] Replicas,
    [property: Id(5)] long WeightBytesReceived,
    [property: Id(6)] long WeightBytesSent,
    [property: Id(7)] DateTime StartedUtc)
{
    /// <summary>Requests this worker's retiring replicas moved out, and how many of them carried KV entries.</summary>
    [Id(8)] public long RequestsMovedOut { get; init; }
    [Id(9)] public long RequestsMovedOutWithKv { get; init; }

    /// <summary>Moved requests that arrived here with a ticket, and of those how many continued from the fetched KV (the rest recomputed their prompt).</summary>
    [Id(10)] public long RequestsMovedIn { get; init; }
    [Id(11)] public long RequestsResumedFromKv { get; init; }

    /// <summary>KV bytes peers fetched from this worker, and this worker fetched from peers.</summary>
    [Id(12)] public long KvBytesSent { get; init; }
    [Id(13)] public long KvBytesReceived { get; init; }

    /// <summary>Runs of later pipeline stages this worker holds for replicas whose first stage is on another worker.</summary>
    [Id(14)] public StageRunStatus[] StageRuns { get; init; } = [];
}

/// <summary>A replica retired with its requests moved out (<see cref="IWorkerGrain.RetireReplica"/>).</summary>
[GenerateSerializer, Immutable]
public sealed record RetireReport(
    [property: Id(0)] bool WasLoaded,
    [property: Id(1)] int Moved,
    [property: Id(2)] int MovedWithKv,
    [property: Id(3)] long KvBytesParked,
    [property: Id(4)] int FinishingInPlace);

/// <summary>How a replica got its weights (the load's figures, for reports and the README).</summary>
[GenerateSerializer, Immutable]
public sealed record LoadReport(
    [property: Id(0)] string Key,
    [property: Id(1)] string Origin,
    [property: Id(2)] long BytesFromPeerWorker,
    [property: Id(3)] long BytesFromLocalDevices,
    [property: Id(4)] long BytesFromStorage,
    [property: Id(5)] double Seconds,
    [property: Id(6)] bool WasLoaded);

/// <summary>A tensor a worker can send: its name, dtype (TorchSharp ScalarType as int), shape and size.</summary>
[GenerateSerializer, Immutable]
public sealed record WeightEntry(
    [property: Id(0)] string Name,
    [property: Id(1)] int DType,
    [property: Id(2)] long[] Shape,
    [property: Id(3)] long Bytes);

/// <summary>The plan in force on the cluster as the controller holds it.</summary>
[GenerateSerializer, Immutable]
public sealed record ClusterPlanView(
    [property: Id(0)] int Epoch,
    [property: Id(1)] string? InForceYaml,
    [property: Id(2)] string? TargetYaml,
    [property: Id(3)] string[] LiveNodes,
    [property: Id(4)] string[] MissingReplicas,
    [property: Id(5)] string? LastEvent)
{
    /// <summary>The re-plan that made the plan in force (why, what it replaced, for what workload); null while the target itself is served.</summary>
    [Id(6)] public ReplanRecord? Replan { get; init; }

    /// <summary>The forecasting loop's last window (observed, forecast, decision, why); null when the loop is off or has not closed a window.</summary>
    [Id(7)] public LoopRecord? Loop { get; init; }

    /// <summary>The loop's last window that applied a plan (a switch or a re-route), with the outcome.</summary>
    [Id(8)] public LoopRecord? LoopSwitch { get; init; }

    /// <summary>The workload the controller observes (the front ends' reports over the last arrival window, per type of the target plan); null before any report.</summary>
    [Id(9)] public string? Observed { get; init; }
}

/// <summary>The answer to a plan switch across the cluster (PUT /v1/plan).</summary>
[GenerateSerializer, Immutable]
public sealed record ClusterSwitchReport(
    [property: Id(0)] bool Applied,
    [property: Id(1)] int Epoch,
    [property: Id(2)] LoadReport[] Loaded,
    [property: Id(3)] string[] Retiring,
    [property: Id(4)] string[] Missing,
    [property: Id(5)] double Seconds,
    [property: Id(6)] string? Error);
