namespace OServe.Planner.CostModel

open System

/// A replica configuration: GPU type, tensor- and pipeline-parallel degree. TP groups always sit
/// inside one node; a replica whose TP*PP exceeds a node spans nodes with whole PP stages per node.
type ReplicaConfig =
    { Gpu: GpuSpec
      Tp: int
      Pp: int
      /// True when PP stages sit on different nodes (stage sends go over the inter-node link).
      CrossNode: bool }

    member c.Size = c.Tp * c.Pp
    member c.Label = sprintf "%s/tp%d/pp%d" c.Gpu.Name c.Tp c.Pp

/// Memory split of one GPU of a replica (the busiest stage).
type ReplicaMemory =
    { BudgetBytes: int64
      WeightBytesPerGpu: int64
      KvBytesPerTokenPerGpu: int64
      /// Tokens of KV the whole replica holds (every GPU holds its slice of every token).
      KvCapacityTokens: int64 }

/// Link bandwidths seen by a replica (intra-node always; inter-node when CrossNode).
type Links =
    { IntraBytesPerSec: float
      InterBytesPerSec: float }

/// Throughput and latency of one replica config on one request type.
type ServiceEstimate =
    { /// Requests/s one replica sustains (continuous batching at BatchSize within KV capacity).
      Rate: float
      BatchSize: int
      TtftSec: float
      TpotSec: float
      E2eSec: float }

[<RequireQualifiedAccess>]
module ReplicaCost =
    let private ceilDiv (a: int64) (b: int64) = (a + b - 1L) / b

    /// Memory feasibility. Infeasible when TP does not divide the attention heads, KV heads cannot be
    /// split or replicated evenly, PP exceeds the layers, or weights + workspace + MinKvTokens of KV
    /// exceed MemoryUtilization of a GPU (checked exactly in bytes).
    let memory (k: CostCoefficients) (m: ModelSpec) (c: ReplicaConfig) : Result<ReplicaMemory, string> =
        if c.Tp < 1 || c.Pp < 1 then Error(sprintf "%s: TP and PP must be >= 1" c.Label)
        elif m.NumHeads % c.Tp <> 0 then
            Error(sprintf "%s: TP %d does not divide the %d attention heads of %s" c.Label c.Tp m.NumHeads m.Name)
        elif m.NumKvHeads % c.Tp <> 0 && c.Tp % m.NumKvHeads <> 0 then
            Error(sprintf "%s: TP %d neither divides nor is a multiple of the %d KV heads" c.Label c.Tp m.NumKvHeads)
        elif c.Pp > m.NumLayers then
            Error(sprintf "%s: PP %d exceeds the %d layers of %s" c.Label c.Pp m.NumLayers m.Name)
        else
            let dtype = int64 m.DtypeBytes
            let layersPerStage = ceilDiv (int64 m.NumLayers) (int64 c.Pp)
            // pp = 1: input and output parameters on the one stage; else the first or last stage
            // holds the larger of them (the busiest GPU decides feasibility).
            let ends = if c.Pp = 1 then m.InputParams + m.OutputParams else max m.InputParams m.OutputParams
            let weights = ceilDiv ((layersPerStage * m.ParamsPerLayer + ends) * dtype) (int64 c.Tp)
            let kvHeadsPerGpu = max 1 (m.NumKvHeads / c.Tp)
            let kvPerToken = 2L * layersPerStage * int64 kvHeadsPerGpu * int64 m.HeadDim * dtype
            let budget = int64 (Math.Floor(float c.Gpu.MemoryBytes * k.MemoryUtilization))
            let free = budget - weights - k.WorkspaceBytes
            let capacity = if free <= 0L then 0L else free / kvPerToken
            if capacity < k.MinKvTokens then
                Error(
                    sprintf "%s: %s does not fit: %.2f GiB weights + %.2f GiB workspace + KV for %d tokens exceed %.2f GiB usable per GPU"
                        c.Label m.Name (float weights / float Hardware.GiB) (float k.WorkspaceBytes / float Hardware.GiB)
                        k.MinKvTokens (float budget / float Hardware.GiB))
            else
                Ok { BudgetBytes = budget; WeightBytesPerGpu = weights; KvBytesPerTokenPerGpu = kvPerToken; KvCapacityTokens = capacity }

    /// Ring all-reduce of `bytes` over the TP group: latency + 2 (tp-1)/tp * bytes / effective bandwidth.
    let allReduceSec (k: CostCoefficients) (links: Links) (tp: int) (bytes: float) =
        if tp <= 1 then 0.0
        else k.IntraNodeLatencySec + 2.0 * float (tp - 1) / float tp * bytes / (links.IntraBytesPerSec * k.LinkEfficiency)

    let private sendSec (k: CostCoefficients) (links: Links) (c: ReplicaConfig) (bytes: float) =
        if c.CrossNode then k.InterNodeLatencySec + bytes / (links.InterBytesPerSec * k.LinkEfficiency)
        else k.IntraNodeLatencySec + bytes / (links.IntraBytesPerSec * k.LinkEfficiency)

    /// Step time from a measured profile (CostCoefficients.isMeasured) for a batch given by totals.
    /// The profile is of one unsharded replica; a TP group splits the per-token work (its
    /// all-reduces are added by the callers, as in the roofline), PP stages run it one after another.
    let measuredStepSec (k: CostCoefficients) (c: ReplicaConfig) (prefillTokens: float) (prefillSeqs: float)
                        (attentionPairs: float) (decodes: float) (decodeContextTokens: float) =
        let work =
            k.PrefillSecPerToken * prefillTokens + k.PrefillSecPerSeq * prefillSeqs
            + k.PrefillSecPerAttentionPair * attentionPairs + k.DecodeSecPerSeq * decodes
            + k.DecodeSecPerContextToken * decodeContextTokens
        k.IterationOverheadSec + work / float c.Tp

    /// Time to prefill numSeqs prompts of `tokens` tokens each in one batch, through all PP stages:
    /// max(compute, weight streaming) + two all-reduces per layer + one send per stage boundary.
    let prefillSec (k: CostCoefficients) (m: ModelSpec) (links: Links) (c: ReplicaConfig) (numSeqs: int) (tokens: float) =
        let total = float numSeqs * tokens
        let dense = 2.0 * float m.TotalParams * total
        let attention = k.AttentionFlopsFactor * 2.0 * float m.NumLayers * tokens * tokens * float (m.NumHeads * m.HeadDim) * float numSeqs
        let compute = (dense + attention) / (float c.Tp * c.Gpu.PeakFlops * k.PrefillMfu)
        let weights = float m.WeightBytes / (float c.Tp * c.Gpu.HbmBytesPerSec * k.DecodeHbmEfficiency)
        let activation = total * float m.HiddenSize * float m.DtypeBytes
        let comm = 2.0 * float m.NumLayers * allReduceSec k links c.Tp activation + float (c.Pp - 1) * sendSec k links c activation
        if CostCoefficients.isMeasured k then
            measuredStepSec k c total (float numSeqs) (float numSeqs * tokens * tokens / 2.0) 0.0 0.0 + comm
        else max compute weights + comm + k.IterationOverheadSec

    /// Time for every one of `batch` running sequences (mean context `context`) to gain one token.
    /// With PP the batch runs as min(Pp, batch) micro-batches (a sequence cannot be split): each
    /// stage streams its weights once per micro-batch, so a cycle streams all weights once per
    /// stage-set (W / tp); KV reads and FLOPs overlap across stages only as far as there are
    /// micro-batches to fill them, so one sequence alone gains nothing from PP.
    let decodeCycleSec (k: CostCoefficients) (m: ModelSpec) (links: Links) (c: ReplicaConfig) (batch: float) (context: float) =
        let b = max 1.0 batch
        let overlap = min (float c.Pp) b
        let bytes = float m.WeightBytes / float c.Tp + b * context * float m.KvBytesPerToken / (float c.Tp * overlap)
        let memory = bytes / (c.Gpu.HbmBytesPerSec * k.DecodeHbmEfficiency)
        let compute = 2.0 * float m.TotalParams * b / (float c.Tp * overlap * c.Gpu.PeakFlops * k.DecodeMfu)
        let microBatch = b / float c.Pp
        let activation = microBatch * float m.HiddenSize * float m.DtypeBytes
        let comm = 2.0 * float m.NumLayers * allReduceSec k links c.Tp activation + float c.Pp * float (c.Pp - 1) / float c.Pp * sendSec k links c activation
        if CostCoefficients.isMeasured k then measuredStepSec k c 0.0 0.0 0.0 b (b * context) + comm
        else max memory compute + comm + k.IterationOverheadSec

    /// Steady state of one replica on a stream of one request type under continuous batching: batch
    /// B = min(MaxNumSeqs, KV capacity / (input + output)) (each request reserves its full length);
    /// B requests take B prefills plus `output` decode cycles, so rate = B / (prefill + output * cycle).
    /// Latency at utilization rho (arrivals = rho * rate): prefills of arrivals stall decoding, so
    /// TPOT = cycle(rho B) / (1 - lambda * prefill1); TTFT = prefill1 / (1 - rho) + one cycle.
    /// Rate is 0 when one request alone exceeds the KV capacity.
    let estimate (k: CostCoefficients) (m: ModelSpec) (links: Links) (c: ReplicaConfig) (mem: ReplicaMemory)
                 (inputTokens: float) (outputTokens: float) (rho: float) : ServiceEstimate =
        let perRequest = inputTokens + outputTokens
        let fit = if perRequest <= 0.0 then 0L else int64 (float mem.KvCapacityTokens / perRequest)
        let batch = int (min (int64 k.MaxNumSeqs) fit)
        if batch < 1 then { Rate = 0.0; BatchSize = 0; TtftSec = infinity; TpotSec = infinity; E2eSec = infinity }
        else
            let context = inputTokens + outputTokens / 2.0
            let prefillAll = prefillSec k m links c batch inputTokens
            let cycle = decodeCycleSec k m links c (float batch) context
            let rate = float batch / (prefillAll + max 0.0 outputTokens * cycle)
            let prefill1 = prefillSec k m links c 1 inputTokens
            let lambda = rho * rate
            let running = max 1.0 (rho * float batch)
            let stall = lambda * prefill1
            let tpot = if stall >= 1.0 then infinity else decodeCycleSec k m links c running context / (1.0 - stall)
            let ttft = (if rho >= 1.0 then infinity else prefill1 / (1.0 - rho)) + decodeCycleSec k m links c running context
            { Rate = rate; BatchSize = batch; TtftSec = ttft; TpotSec = tpot; E2eSec = ttft + max 0.0 (outputTokens - 1.0) * tpot }

/// Where the planner gets the processing rate n_{c,j} and the latency of a config on a type: the
/// analytic steady state below by default, or a table the engine measured (by simulating one
/// replica, or from profiles of real runs). Rate is what one replica sustains at saturation;
/// TtftSec/TpotSec/E2eSec are at `utilization` times that rate. Implementations must be pure
/// (same inputs, same answer) and thread-safe: the planner calls it for every candidate and type.
type IServiceModel =
    abstract Estimate:
        model: ModelSpec * config: ReplicaConfig * links: Links * memory: ReplicaMemory * inputTokens: float * outputTokens: float * utilization: float ->
            ServiceEstimate

/// The planner's own closed-form steady state (ReplicaCost.estimate) with the given coefficients.
type AnalyticServiceModel(coefficients: CostCoefficients) =
    member _.Coefficients = coefficients

    interface IServiceModel with
        member _.Estimate(model, config, links, memory, inputTokens, outputTokens, utilization) =
            ReplicaCost.estimate coefficients model links config memory inputTokens outputTokens utilization
