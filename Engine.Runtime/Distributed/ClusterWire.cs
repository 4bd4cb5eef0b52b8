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

    /// <summary>The node named by the first device id (<c>node/index</c>); a replica lives on one node.</summary>
    public string Node => NodeOf(Devices[0]);

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
    [property: Id(7)] DateTime StartedUtc);

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
