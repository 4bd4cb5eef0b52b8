namespace OServe.Planner.CostModel

open System

/// The totals of one engine step that its time depends on: prefill chunks (their tokens and the
/// causal (query, key) pairs they attend) and decodes (one token each, over their context).
type StepShape =
    { PrefillTokens: float
      NumPrefills: float
      AttentionPairs: float
      NumDecodes: float
      DecodeContextTokens: float }

    /// numSeqs fresh prompts of `tokens` tokens each in one step.
    static member Prefill(numSeqs: float, tokens: float) =
        { PrefillTokens = numSeqs * tokens; NumPrefills = numSeqs; AttentionPairs = numSeqs * tokens * tokens / 2.0
          NumDecodes = 0.0; DecodeContextTokens = 0.0 }

    /// `batch` sequences gaining one token each at mean context `context`.
    static member Decode(batch: float, context: float) =
        { PrefillTokens = 0.0; NumPrefills = 0.0; AttentionPairs = 0.0; NumDecodes = batch; DecodeContextTokens = batch * context }

/// Where a step time comes from, most specific first.
type StepTimeSource =
    /// A linear profile of a real engine (`oserve profile`, e.g. the CPU engine).
    | LinearProfile
    /// Per-rank layer times measured for this model and TP degree (GPU, degree), moved to the target GPU.
    | GpuTable of gpu: string * model: string * degree: int
    /// A roofline whose efficiencies and floors were fitted to the GPU profile at this TP degree.
    | GpuFitted of gpu: string * degree: int
    /// The analytic roofline with constant efficiencies (CostCoefficients).
    | Roofline

/// One step's time split into its parts, seconds.
type StepParts =
    { LayersSec: float
      LmHeadSec: float
      CommSec: float
      OverheadSec: float }

    member p.TotalSec = p.LayersSec + p.LmHeadSec + p.CommSec + p.OverheadSec

/// The step time of one replica config: the single implementation behind the planner's service
/// estimates (ReplicaCost) and the simulator's iteration time. Built once per (coefficients,
/// model, links, config); pure and thread-safe.
///
/// With a GPU profile (CostCoefficients.GpuSteps, the built-in H200 one by default) a step is
///     layers * per-rank layer time (measured table of this model and TP, or the roofline fitted by
///     TP degree for models the table lacks; moved to the target GPU by GpuStepProfile.transfer)
///     + LM head of the sampled rows + two all-reduces per layer + PP sends + engine overhead.
/// PP: a step with prefill passes the stages one after another; a step of decodes only runs as
/// min(pp, decodes) micro-batches that overlap, so its cycle is `layers` times the layer time of
/// one micro-batch (one sequence alone gains nothing from PP).
[<Sealed>]
type StepTimeModel(k: CostCoefficients, m: ModelSpec, links: Links, c: ReplicaConfig) =
    let tp, pp = c.Tp, c.Pp
    let layers = float m.NumLayers
    let activationBytesPerRow = float m.HiddenSize * float m.DtypeBytes
    // LM-head parameters: vocabulary x hidden, the size of the input embedding (tied or not; OPT's
    // learned positions add a few percent).
    let lmParams = float m.InputParams

    let gpu =
        if CostCoefficients.isMeasured k then None
        else
            k.GpuSteps |> Option.map (fun p ->
                let matched = GpuStepProfile.tryMatch p m
                let table = matched |> Option.bind (fun i -> GpuStepProfile.layerFit p i tp |> Option.map (fun f -> i, f))
                p, table)

    let source =
        if CostCoefficients.isMeasured k then LinearProfile
        else
            match gpu with
            | Some(p, Some(i, _)) -> GpuTable(p.Gpu.Name, p.Models[i].Name, tp)
            | Some(p, None) -> GpuFitted(p.Gpu.Name, (GpuStepProfile.rooflineFit p tp).Degree)
            | None -> Roofline

    let allReduceSec (bytes: float) =
        if tp <= 1 then 0.0
        else links.AllReduceLatencySec + 2.0 * float (tp - 1) / float tp * bytes / links.AllReduceBusBytesPerSec

    let sendSec (bytes: float) =
        if c.CrossNode then links.InterLatencySec + bytes / (links.InterBytesPerSec * k.LinkEfficiency)
        else links.AllReduceLatencySec + bytes / (links.IntraBytesPerSec * k.LinkEfficiency)

    // TP all-reduces (two per layer) and PP sends; a step of decodes only runs as pp micro-batches.
    let commSec (s: StepShape) =
        let rows = if s.PrefillTokens > 0.0 then s.PrefillTokens + s.NumDecodes else s.NumDecodes / float pp
        let bytes = rows * activationBytesPerRow
        2.0 * layers * allReduceSec bytes + float (pp - 1) * sendSec bytes

    let gpuLayerMs (p: GpuStepProfile) table (hasPrefill: bool) (rows: float) (pairs: float) (context: float) =
        let work = GpuStepProfile.layerWork m.ParamsPerLayer m.NumHeads m.NumKvHeads m.HeadDim m.DtypeBytes tp rows pairs context
        let roof = GpuStepProfile.rooflineMs p work
        let measured =
            match table with
            | Some(_, f) -> GpuStepProfile.evalLayer f hasPrefill rows pairs context
            | None -> GpuStepProfile.evalRoofline (GpuStepProfile.rooflineFit p tp) roof
        GpuStepProfile.transfer p c.Gpu measured roof

    let gpuLmHeadMs (p: GpuStepProfile) table (rows: float) =
        let perRank = lmParams / float tp
        let roof = GpuStepProfile.rooflineMs p (struct (perRank * float m.DtypeBytes, 2.0 * perRank * rows))
        let measured =
            match table with
            | Some(i, _) -> GpuStepProfile.lmHeadMs (p.Models[i].Tps |> Array.find (fun t -> t.Degree = tp)) rows
            | None ->
                let f = GpuStepProfile.rooflineFit p tp
                let struct (mem, comp) = roof
                max (f.MemSlope * mem) (f.ComputeSlope * comp)
        GpuStepProfile.transfer p c.Gpu measured roof

    let rooflineSec (s: StepShape) =
        let peak = c.Gpu.PeakFlops
        let paramFlopsPerToken = 2.0 * float m.TotalParams
        // 4 L H d FLOPs per causal (query, key) pair: the prefill's 2 L t^2 H d over t^2 / 2 pairs.
        let attentionFlopsPerPair = k.AttentionFlopsFactor * 4.0 * layers * float m.NumHeads * float m.HeadDim
        let overlap = max 1.0 (min (float pp) s.NumDecodes)
        let compute =
            (paramFlopsPerToken * s.PrefillTokens + attentionFlopsPerPair * s.AttentionPairs) / (float tp * peak * k.PrefillMfu)
            + paramFlopsPerToken * s.NumDecodes / (float tp * overlap * peak * k.DecodeMfu)
        let kvBytes = s.DecodeContextTokens * float m.KvBytesPerToken / (float tp * overlap)
        let memory = (float m.WeightBytes / float tp + kvBytes) / (c.Gpu.HbmBytesPerSec * k.DecodeHbmEfficiency)
        max compute memory

    /// The work of a step under a linear profile (without its per-step overhead): the profile is of
    /// one unsharded replica; a TP group splits the per-token work, PP stages run it one after another.
    static member LinearWorkSec(k: CostCoefficients, tp: int, s: StepShape) =
        let work =
            k.PrefillSecPerToken * s.PrefillTokens + k.PrefillSecPerSeq * s.NumPrefills
            + k.PrefillSecPerAttentionPair * s.AttentionPairs + k.DecodeSecPerSeq * s.NumDecodes
            + k.DecodeSecPerContextToken * s.DecodeContextTokens
        work / float tp

    member _.Source = source

    /// Where the numbers come from, in words (printed by `oserve costmodel`, plan and compare).
    member _.Describe() =
        let moved (p: GpuStepProfile) =
            if p.Gpu.HbmBytesPerSec = c.Gpu.HbmBytesPerSec && p.Gpu.PeakFlops = c.Gpu.PeakFlops then sprintf "on %s" p.Gpu.Name
            else
                sprintf "moved from %s to %s (HBM x%.2f, FLOP/s x%.2f)" p.Gpu.Name c.Gpu.Name
                    (c.Gpu.HbmBytesPerSec / p.Gpu.HbmBytesPerSec) (c.Gpu.PeakFlops / p.Gpu.PeakFlops)
        match source, gpu with
        | GpuTable(_, model, degree), Some(p, _) -> sprintf "measured %s tp%d layer times %s" model degree (moved p)
        | GpuFitted(_, degree), Some(p, _) -> sprintf "roofline fitted to the %s profile at tp%d (%s not profiled), %s" p.Gpu.Name degree m.Name (moved p)
        | LinearProfile, _ -> "linear step-time profile of a real engine (oserve profile)"
        | _ -> "analytic roofline (constant efficiencies)"

    /// The step's time in parts (seconds).
    member _.Parts(s: StepShape) : StepParts =
        if s.PrefillTokens <= 0.0 && s.NumDecodes <= 0.0 then { LayersSec = 0.0; LmHeadSec = 0.0; CommSec = 0.0; OverheadSec = 0.0 }
        else
            let comm = commSec s
            match gpu with
            | Some(p, table) ->
                let layerMs =
                    if s.PrefillTokens > 0.0 then gpuLayerMs p table true (s.PrefillTokens + s.NumDecodes) s.AttentionPairs s.DecodeContextTokens
                    else
                        let micro = max 1.0 (min (float pp) s.NumDecodes)
                        gpuLayerMs p table false (s.NumDecodes / micro) 0.0 (s.DecodeContextTokens / micro)
                { LayersSec = layers * layerMs / 1e3
                  LmHeadSec = gpuLmHeadMs p table (max 1.0 (s.NumPrefills + s.NumDecodes)) / 1e3
                  CommSec = comm
                  OverheadSec = k.IterationOverheadSec }
            | None when source = LinearProfile -> { LayersSec = StepTimeModel.LinearWorkSec(k, tp, s); LmHeadSec = 0.0; CommSec = comm; OverheadSec = k.IterationOverheadSec }
            | None -> { LayersSec = rooflineSec s; LmHeadSec = 0.0; CommSec = comm; OverheadSec = k.IterationOverheadSec }

    member t.Seconds(s: StepShape) = t.Parts(s).TotalSec

    /// Per-rank layer time (ms) on the target GPU for a shape, without LM head, communication or
    /// overhead (None without a GPU profile): what the calibration anchors compare.
    member _.LayerMs(hasPrefill: bool, rows: float, pairs: float, context: float) =
        gpu |> Option.map (fun (p, table) -> gpuLayerMs p table hasPrefill rows pairs context)
