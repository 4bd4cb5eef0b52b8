namespace OServe.Planner.CostModel

open System

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

    /// Time to prefill numSeqs prompts of `tokens` tokens each in one batch, through all PP stages.
    let prefillSec (k: CostCoefficients) (m: ModelSpec) (links: Links) (c: ReplicaConfig) (numSeqs: int) (tokens: float) =
        StepTimeModel(k, m, links, c).Seconds(StepShape.Prefill(float numSeqs, tokens))

    /// Time for every one of `batch` running sequences (mean context `context`) to gain one token.
    let decodeCycleSec (k: CostCoefficients) (m: ModelSpec) (links: Links) (c: ReplicaConfig) (batch: float) (context: float) =
        StepTimeModel(k, m, links, c).Seconds(StepShape.Decode(max 1.0 batch, context))

    /// Steady state of one replica on a stream of one request type under continuous batching: batch
    /// B = min(MaxNumSeqs, KV capacity / (input + output)) (each request reserves its full length);
    /// in steady state B / output requests finish, and as many are admitted, per step, so every step
    /// carries B / output prefills beside the other decodes (continuous batching mixes them into the
    /// same GEMMs) and rate = B / (output * that mixed step). One giant step of all B prefills would
    /// credit prefill with the efficiency of a 100k-row GEMM that no engine step reaches.
    /// Latency at utilization rho (arrivals lambda = rho * rate): every step of length tau carries
    /// the lambda * tau prefills that arrived during the last one, and by Little's law the number
    /// running is N = lambda * output * tau (each request stays for `output` steps), at least 1 and
    /// at most B; TPOT is the joint fixed point tau = step(lambda tau prefills, N decodes), found
    /// from N = 1 upward (infinite where it diverges). Where a step's time hardly grows with its
    /// batch (memory-bound decode: GPUs) N comes out near rho B; where it grows with every sequence
    /// (compute-bound decode: a CPU core) far fewer run at moderate load than rho B, and taking
    /// rho B had made such replicas look several times slower under load than they are.
    /// TTFT = prefill1 / (1 - rho) + one such step.
    /// Rate is 0 when one request alone exceeds the KV capacity.
    let estimate (k: CostCoefficients) (m: ModelSpec) (links: Links) (c: ReplicaConfig) (mem: ReplicaMemory)
                 (inputTokens: float) (outputTokens: float) (rho: float) : ServiceEstimate =
        let perRequest = inputTokens + outputTokens
        let fit = if perRequest <= 0.0 then 0L else int64 (float mem.KvCapacityTokens / perRequest)
        let batch = int (min (int64 k.MaxNumSeqs) fit)
        if batch < 1 then { Rate = 0.0; BatchSize = 0; TtftSec = infinity; TpotSec = infinity; E2eSec = infinity }
        else
            let step = StepTimeModel(k, m, links, c)
            let context = inputTokens + outputTokens / 2.0
            // A step of `prefills` fresh prompts beside `decodes` running sequences.
            let mixed (prefills: float) (decodes: float) =
                let p = StepShape.Prefill(prefills, inputTokens)
                let d = StepShape.Decode(max 0.0 decodes, context)
                step.Seconds { p with NumDecodes = d.NumDecodes; DecodeContextTokens = d.DecodeContextTokens }
            let steps = max 1.0 outputTokens
            let admitted = float batch / steps
            let rate = float batch / (steps * mixed admitted (float batch - admitted))
            let prefill1 = step.Seconds(StepShape.Prefill(1.0, inputTokens))
            let lambda = rho * rate
            let tpot =
                if rho >= 1.0 then infinity
                else
                    // Both tau and N only grow from (step of one sequence, 1): the iteration climbs
                    // monotonically to the smallest fixed point.
                    let mutable running = 1.0
                    let mutable tau = mixed 0.0 running
                    let mutable i = 0
                    let mutable moving = true
                    while moving && i < 200 do
                        i <- i + 1
                        if Double.IsFinite tau then
                            let next = mixed (lambda * tau) running
                            let nextTau = if next > 1e4 then infinity else next
                            let nextRunning = if Double.IsFinite nextTau then Math.Clamp(lambda * steps * nextTau, 1.0, float batch) else float batch
                            moving <- abs (nextTau - tau) > 1e-12 * max 1e-9 tau || abs (nextRunning - running) > 1e-9 * running
                            tau <- nextTau
                            running <- nextRunning
                        else moving <- false
                    tau
            let ttft = (if rho >= 1.0 then infinity else prefill1 / (1.0 - rho)) + tpot
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
