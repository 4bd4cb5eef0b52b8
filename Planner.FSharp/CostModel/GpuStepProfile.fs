namespace OServe.Planner.CostModel

open System
open System.Collections.Concurrent
open System.IO
open YamlDotNet.RepresentationModel

/// The shape of a profiled model, as gpu_shapes.py built it (matched against model cards by shape).
type ProfiledShape =
    { Architecture: string
      Layers: int
      Hidden: int
      Intermediate: int
      Heads: int
      KvHeads: int
      Vocab: int }

/// Every point measured for one (model, TP degree), in milliseconds per layer on one rank.
type TpMeasurements =
    { Degree: int
      /// (sequences, tokens each, ms)
      Prefill: (int * int * float)[]
      /// (batch, context, ms), replayed from a CUDA graph
      Decode: (int * int * float)[]
      /// (decodes, their context, prefill tokens, ms): held out of the fit, used to check it
      Mixed: (int * int * int * float)[]
      /// (rows, ms) of the rank's LM-head slice
      LmHead: (int * float)[] }

type ProfiledModel =
    { Name: string
      Shape: ProfiledShape
      Tps: TpMeasurements[] }

/// The GPU a profile was measured on: its vendor figures (what transfer ratios use) and the
/// figures measured beside the profile (what splits a measured time into roofline and floor).
type ProfiledGpu =
    { Name: string
      PeakFlops: float
      HbmBytesPerSec: float
      MemoryBytes: int64
      MeasuredFlops: float
      MeasuredBytesPerSec: float }

/// Per-rank layer time of one (model, TP) on the profiled GPU, fitted to its measured points:
///     t(rows, pairs, ctx) = G(rows) + Alpha * pairs + Beta * ctx      (milliseconds per layer)
/// and, for a step holding a prefill, at least EagerFloorMs. rows = prefill tokens + decodes
/// (every row goes through the same GEMMs), pairs = causal (query, key) pairs of the prefill
/// chunks, ctx = context tokens the decodes attend to. G is piecewise linear in rows between knots
/// at the measured row counts (extended linearly past the last one: large steps are
/// compute-bound), fitted by least squares on relative error together with Alpha and Beta over the
/// decode points and the prefill points of >= 512 rows. Decode is replayed from a CUDA graph (as
/// serving engines run it) but a step with a prefill is launched kernel by kernel, and below a few
/// hundred rows its launches, not the GPU, set its time: EagerFloorMs is the fastest measured
/// prefill of under 512 rows. The mixed points are held out (checkFit reports them).
type LayerFit =
    { Knots: float[]
      Values: float[]
      AlphaMsPerPair: float
      BetaMsPerContextToken: float
      EagerFloorMs: float }

/// A roofline fitted by TP degree over every profiled model, for models the profile lacks:
///     t = max(MemSlope * M + MemFloor, ComputeSlope * C + ComputeFloor)   (ms per layer)
/// M and C are the step's weight/KV bytes and FLOPs per rank at the profiled GPU's measured
/// bandwidth and FLOP/s (ms); 1 / slope is the achieved efficiency at that degree.
type RooflineFit =
    { Degree: int
      MemSlope: float
      MemFloorMs: float
      ComputeSlope: float
      ComputeFloorMs: float }

/// Where each measured point of a profile lands under its fit (the fit's error, for reports and tests).
type FitCheck =
    { Model: string
      Degree: int
      Kind: string
      Point: string
      MeasuredMs: float
      FittedMs: float }

    member c.RelativeError = (c.FittedMs - c.MeasuredMs) / c.MeasuredMs

/// A measured GPU step-time profile (the built-in one is derived from
/// ../shared/calibration/h200-shapes.json; see Profiles/h200-step-times.yaml). Fits are made on
/// first use and cached; the type is immutable otherwise and safe to share between threads.
[<Sealed>]
type GpuStepProfile(source: string, path: string, gpu: ProfiledGpu, models: ProfiledModel[]) =
    let layerFits = ConcurrentDictionary<struct (int * int), Lazy<LayerFit>>()
    let rooflineFits = ConcurrentDictionary<int, Lazy<RooflineFit>>()

    member _.Source = source
    member _.Path = path
    member _.Gpu = gpu
    member _.Models = models

    member internal _.LayerFitCached(modelIndex: int, degree: int, make: unit -> LayerFit) =
        layerFits.GetOrAdd(struct (modelIndex, degree), fun _ -> lazy (make ())).Value

    member internal _.RooflineFitCached(degree: int, make: unit -> RooflineFit) =
        rooflineFits.GetOrAdd(degree, fun _ -> lazy (make ())).Value

[<RequireQualifiedAccess>]
module GpuStepProfile =
    let private inv = Globalization.CultureInfo.InvariantCulture

    // ---- reading -------------------------------------------------------------------------

    type private Reader(path: string) =
        member _.Fail(node: YamlNode, message: string) : 'a =
            raise (FormatException(sprintf "%s:%d: %s" path (int node.Start.Line) message))

        member r.Map(node: YamlNode, what: string) =
            match node with
            | :? YamlMappingNode as m -> m
            | _ -> r.Fail(node, sprintf "%s must be a mapping" what)

        member r.Seq(node: YamlNode, what: string) =
            match node with
            | :? YamlSequenceNode as s -> s
            | _ -> r.Fail(node, sprintf "%s must be a list" what)

        member r.Field(m: YamlMappingNode, key: string, where: string) =
            match m.Children.TryGetValue(YamlScalarNode key) with
            | true, v -> v
            | _ -> r.Fail(m, sprintf "%s: missing '%s'" where key)

        member r.Number(node: YamlNode, what: string) =
            match node with
            | :? YamlScalarNode as s ->
                let text = match s.Value with null -> "" | v -> v
                match Double.TryParse(text, Globalization.NumberStyles.Float, inv) with
                | true, v when Double.IsFinite v && v >= 0.0 -> v
                | _ -> r.Fail(node, sprintf "%s must be a non-negative number, got '%s'" what text)
            | _ -> r.Fail(node, sprintf "%s must be a number" what)

        member r.Int(node: YamlNode, what: string) =
            let v = r.Number(node, what)
            if v <> Math.Floor v || v < 1.0 || v > 1e9 then r.Fail(node, sprintf "%s must be a whole number >= 1, got %g" what v) else int v

        member r.Text(node: YamlNode, what: string) : string =
            match node with
            | :? YamlScalarNode as s ->
                match s.Value with
                | null -> r.Fail(node, sprintf "%s must be text" what)
                | v -> v
            | _ -> r.Fail(node, sprintf "%s must be text" what)

        /// A list of rows of exactly n numbers, the last a time (ms > 0).
        member r.Rows(node: YamlNode, n: int, what: string) =
            [| for row in r.Seq(node, what).Children do
                   let cells = r.Seq(row, what + " row").Children
                   if cells.Count <> n then r.Fail(row, sprintf "each %s row has %d numbers, got %d" what n cells.Count)
                   let values = cells |> Seq.mapi (fun i c -> if i < n - 1 then float (r.Int(c, what)) else r.Number(c, what)) |> Array.ofSeq
                   if values[n - 1] <= 0.0 then r.Fail(row, sprintf "a %s time must be > 0 ms" what)
                   values |]

    let private parse (path: string) (text: string) : GpuStepProfile =
        let r = Reader(path)
        let yaml = YamlStream()
        try yaml.Load(new StringReader(text))
        with :? YamlDotNet.Core.YamlException as e -> raise (FormatException(sprintf "%s:%d: %s" path e.Start.Line e.Message))
        if yaml.Documents.Count = 0 then raise (FormatException(sprintf "%s: empty profile" path))
        let root = r.Map(yaml.Documents[0].RootNode, "the profile")
        let g = r.Map(r.Field(root, "gpu", "profile"), "gpu")
        let num key = r.Number(r.Field(g, key, "gpu"), "gpu." + key)
        let gpu =
            { Name = r.Text(r.Field(g, "name", "gpu"), "gpu.name")
              PeakFlops = num "tflops" * 1e12
              HbmBytesPerSec = num "hbm_gbps" * 1e9
              MemoryBytes = int64 (num "memory_gib" * float Hardware.GiB)
              MeasuredFlops = num "measured_gemm_tflops" * 1e12
              MeasuredBytesPerSec = num "measured_copy_gbps" * 1e9 }
        if gpu.PeakFlops <= 0.0 || gpu.HbmBytesPerSec <= 0.0 || gpu.MeasuredFlops <= 0.0 || gpu.MeasuredBytesPerSec <= 0.0 then
            r.Fail(g, "gpu figures must be > 0")
        let source =
            match root.Children.TryGetValue(YamlScalarNode "source") with
            | true, s -> r.Text(s, "source")
            | _ -> path
        let models =
            [| for node in r.Seq(r.Field(root, "models", "profile"), "models").Children do
                   let m = r.Map(node, "a model")
                   let name = r.Text(r.Field(m, "name", "model"), "model name")
                   let s = r.Map(r.Field(m, "shape", name), name + ".shape")
                   let i key = r.Int(r.Field(s, key, name + ".shape"), name + ".shape." + key)
                   let arch = r.Text(r.Field(s, "architecture", name + ".shape"), name + ".shape.architecture")
                   if arch <> "llama" && arch <> "opt" then r.Fail(s, sprintf "%s.shape.architecture must be llama or opt, got '%s'" name arch)
                   let shape =
                       { Architecture = arch; Layers = i "layers"; Hidden = i "hidden"; Intermediate = i "intermediate"
                         Heads = i "heads"; KvHeads = i "kv_heads"; Vocab = i "vocab" }
                   let tps =
                       [| for tnode in r.Seq(r.Field(m, "tp", name), name + ".tp").Children do
                              let t = r.Map(tnode, name + ".tp entry")
                              let where = name + " tp entry"
                              let degree = r.Int(r.Field(t, "degree", where), where + " degree")
                              let rows key n = r.Rows(r.Field(t, key, where), n, sprintf "%s tp%d %s" name degree key)
                              let prefill = rows "prefill" 3 |> Array.map (fun v -> int v[0], int v[1], v[2])
                              let decode = rows "decode" 3 |> Array.map (fun v -> int v[0], int v[1], v[2])
                              let mixed =
                                  match t.Children.TryGetValue(YamlScalarNode "mixed") with
                                  | true, _ -> rows "mixed" 4 |> Array.map (fun v -> int v[0], int v[1], int v[2], v[3])
                                  | _ -> [||]
                              let lm = rows "lm_head" 2 |> Array.map (fun v -> int v[0], v[1])
                              if prefill.Length < 2 || decode.Length < 2 || lm.Length < 1 then
                                  r.Fail(t, sprintf "%s tp%d needs at least 2 prefill, 2 decode and 1 lm_head points" name degree)
                              { Degree = degree; Prefill = prefill; Decode = decode; Mixed = mixed; LmHead = Array.sortBy fst lm } |]
                   if tps.Length = 0 then r.Fail(m, sprintf "%s has no tp entries" name)
                   { Name = name; Shape = shape; Tps = tps } |]
        GpuStepProfile(source, path, gpu, models)

    /// Reads a profile file (the YAML written by scripts/calibration/derive_gpu_profile.py).
    let load (path: string) : Result<GpuStepProfile, string> =
        if not (File.Exists path) then Error(sprintf "%s: GPU step-time profile not found" path)
        else
            try Ok(parse path (File.ReadAllText path))
            with :? FormatException as e -> Error e.Message

    /// The profile shipped in this assembly (derived from ../shared/calibration/h200-shapes.json).
    let builtIn : Lazy<GpuStepProfile> =
        lazy
            (let name = "OServe.Planner.h200-step-times.yaml"
             use stream =
                 match typeof<GpuStepProfile>.Assembly.GetManifestResourceStream(name) with
                 | null -> failwithf "embedded resource %s is missing from the planner assembly" name
                 | s -> s
             use reader = new StreamReader(stream)
             parse "built-in h200-step-times.yaml" (reader.ReadToEnd()))

    // ---- per-rank work of a layer ----------------------------------------------------------

    /// Parameters of one layer of a profiled shape (the same formulas as Contracts.ModelCard).
    let paramsPerLayer (s: ProfiledShape) =
        let card =
            OServe.Contracts.ModelCard(
                Name = "profiled", Layers = s.Layers, Hidden = s.Hidden, Intermediate = s.Intermediate, Heads = s.Heads,
                KvHeads = s.KvHeads, Vocab = s.Vocab, MaxContext = 2048,
                Architecture = (if s.Architecture = "opt" then OServe.Contracts.ModelArchitecture.Opt else OServe.Contracts.ModelArchitecture.Llama))
        card.ParamsPerLayer

    /// The profiled model whose shape equals m's, if any (matched by shape, not by name).
    let tryMatch (p: GpuStepProfile) (m: ModelSpec) : int option =
        p.Models
        |> Array.tryFindIndex (fun pm ->
            let s = pm.Shape
            s.Layers = m.NumLayers && s.Hidden = m.HiddenSize && s.Heads = m.NumHeads && s.KvHeads = m.NumKvHeads
            && paramsPerLayer s = m.ParamsPerLayer)

    // ---- least squares ---------------------------------------------------------------------

    /// Solves the weighted, ridge-regularised least-squares problem min |W(Ax - b)|^2 + |Px|^2 by
    /// the normal equations (a few dozen unknowns at most), columns scaled to unit size first.
    let internal solve (a: float[][]) (b: float[]) (w: float[]) (penalty: float[][]) : float[] =
        let n = a[0].Length
        let scale = Array.init n (fun j -> a |> Array.fold (fun s row -> max s (abs row[j])) 1e-300)
        let m = Array2D.zeroCreate n (n + 1)
        for r in 0 .. a.Length - 1 do
            let w2 = w[r] * w[r]
            for i in 0 .. n - 1 do
                let ai = a[r][i] / scale[i]
                if ai <> 0.0 then
                    for j in 0 .. n - 1 do m[i, j] <- m[i, j] + w2 * ai * a[r][j] / scale[j]
                    m[i, n] <- m[i, n] + w2 * ai * b[r]
        for row in penalty do
            for i in 0 .. n - 1 do
                for j in 0 .. n - 1 do m[i, j] <- m[i, j] + row[i] * row[j] / (scale[i] * scale[j])
        for i in 0 .. n - 1 do m[i, i] <- m[i, i] + 1e-12
        for c in 0 .. n - 1 do
            let pivot = [ c .. n - 1 ] |> List.maxBy (fun r -> abs m[r, c])
            for j in 0 .. n do
                let t = m[c, j]
                m[c, j] <- m[pivot, j]
                m[pivot, j] <- t
            for r in 0 .. n - 1 do
                if r <> c && m[r, c] <> 0.0 then
                    let f = m[r, c] / m[c, c]
                    for j in c .. n do m[r, j] <- m[r, j] - f * m[c, j]
        Array.init n (fun i -> m[i, n] / m[i, i] / scale[i])

    /// Linear interpolation weights of x over sorted knots (clamped below, extended past the end).
    let internal knotWeights (knots: float[]) (x: float) : (int * float) list =
        let k = knots.Length
        if k = 1 || x <= knots[0] then [ 0, 1.0 ]
        else
            let i = if x >= knots[k - 1] then k - 2 else (knots |> Array.findIndexBack (fun v -> v <= x))
            let f = (x - knots[i]) / (knots[i + 1] - knots[i])
            [ i, 1.0 - f; i + 1, f ]

    /// Rows below which a prefill step's time is set by its kernel launches (see LayerFit).
    let private launchBoundRows = 512

    let evalLayer (f: LayerFit) (hasPrefill: bool) (rows: float) (pairs: float) (context: float) =
        let g = knotWeights f.Knots rows |> List.sumBy (fun (i, w) -> w * f.Values[i])
        let gpu = max 0.0 g + f.AlphaMsPerPair * pairs + f.BetaMsPerContextToken * context
        if hasPrefill then max gpu f.EagerFloorMs else gpu

    let private fitLayer (t: TpMeasurements) : LayerFit =
        // (rows, causal pairs, decode context tokens, ms)
        let points =
            [| for (seqs, tokens, ms) in t.Prefill do
                   if seqs * tokens >= launchBoundRows then yield float (seqs * tokens), float seqs * float tokens * float tokens / 2.0, 0.0, ms
               for (batch, context, ms) in t.Decode do yield float batch, 0.0, float batch * float context, ms |]
        let small = t.Prefill |> Array.filter (fun (seqs, tokens, _) -> seqs * tokens < launchBoundRows) |> Array.map (fun (_, _, ms) -> ms)
        let eagerFloor = if small.Length = 0 then 0.0 else Array.min small
        let knots = points |> Array.map (fun (r, _, _, _) -> r) |> Array.distinct |> Array.sort
        let k = knots.Length
        let design (usePairs: bool) (useContext: bool) =
            points |> Array.map (fun (rows, pairs, ctx, _) ->
                let row = Array.zeroCreate (k + 2)
                for (i, w) in knotWeights knots rows do row[i] <- row[i] + w
                row[k] <- if usePairs then pairs else 0.0
                row[k + 1] <- if useContext then ctx else 0.0
                row)
        let b = points |> Array.map (fun (_, _, _, ms) -> ms)
        let w = b |> Array.map (fun ms -> 1.0 / ms)
        // A light second-difference penalty on G keeps knots with one noisy point from kinking the curve.
        let smooth =
            [| for i in 1 .. k - 2 ->
                   let row = Array.zeroCreate (k + 2)
                   let scaleAt = b |> Array.average
                   row[i - 1] <- 0.05 / scaleAt
                   row[i] <- -0.1 / scaleAt
                   row[i + 1] <- 0.05 / scaleAt
                   row |]
        let fit usePairs useContext = solve (design usePairs useContext) b w smooth
        // Attention terms cannot be negative: drop one that comes out below zero and refit.
        let x0 = fit true true
        let x =
            match x0[k] >= 0.0, x0[k + 1] >= 0.0 with
            | true, true -> x0
            | false, true -> fit false true
            | true, false -> fit true false
            | false, false -> fit false false
        // Time never falls with more rows: a running maximum irons out what noise is left.
        let values = x[.. k - 1] |> Array.scan max 0.0 |> Array.tail
        { Knots = knots; Values = values; AlphaMsPerPair = max 0.0 x[k]; BetaMsPerContextToken = max 0.0 x[k + 1]; EagerFloorMs = eagerFloor }

    /// The layer fit of profiled model i at a measured degree (cached).
    let layerFit (p: GpuStepProfile) (modelIndex: int) (degree: int) : LayerFit option =
        p.Models[modelIndex].Tps
        |> Array.tryFind (fun t -> t.Degree = degree)
        |> Option.map (fun t -> p.LayerFitCached(modelIndex, degree, fun () -> fitLayer t))

    /// LM-head time (ms) for `rows` sampled rows: linear between measured row counts, extended past the last.
    let lmHeadMs (t: TpMeasurements) (rows: float) =
        let pts = t.LmHead
        if pts.Length = 1 then snd pts[0]
        else
            let knots = pts |> Array.map (fst >> float)
            let weights = knotWeights knots rows
            max (snd pts[0] * 0.5) (weights |> List.sumBy (fun (i, w) -> w * snd pts[i]))

    // ---- per-rank work, roofline fit, transfer ----------------------------------------------

    /// Bytes one rank reads (its weight slice, the KV its decodes attend to) and FLOPs it computes
    /// in one layer of a step; KV heads are split over TP or replicated once TP exceeds them.
    let layerWork (paramsPerLayer: int64) (heads: int) (kvHeads: int) (headDim: int) (dtypeBytes: int) (tp: int)
                  (rows: float) (pairs: float) (context: float) =
        let perRank = float paramsPerLayer / float tp
        let kvPerToken = 2.0 * float (max 1 (kvHeads / tp)) * float headDim * float dtypeBytes
        let bytes = perRank * float dtypeBytes + context * kvPerToken
        let flops = 2.0 * perRank * rows + 4.0 * float (max 1 (heads / tp)) * float headDim * (pairs + context)
        struct (bytes, flops)

    /// Roofline times (ms) of a layer's work at the profiled GPU's measured bandwidth and FLOP/s.
    let rooflineMs (p: GpuStepProfile) (struct (bytes: float, flops: float)) =
        struct (1e3 * bytes / p.Gpu.MeasuredBytesPerSec, 1e3 * flops / p.Gpu.MeasuredFlops)

    /// Fits slope and floor of t = slope * x + floor by least squares on relative error.
    let private line (xs: float[]) (ts: float[]) fallbackSlope =
        if xs.Length < 2 then fallbackSlope, 0.0
        else
            let x = solve (xs |> Array.map (fun v -> [| v; 1.0 |])) ts (ts |> Array.map (fun t -> 1.0 / t)) [||]
            if x[0] <= 0.0 then fallbackSlope, 0.0 else x[0], max 0.0 x[1]

    let private fitRoofline (p: GpuStepProfile) (degree: int) : RooflineFit =
        let measured =
            p.Models |> Array.collect (fun m ->
                m.Tps |> Array.filter (fun t -> t.Degree = degree) |> Array.collect (fun t ->
                    let work = layerWork (paramsPerLayer m.Shape) m.Shape.Heads m.Shape.KvHeads (m.Shape.Hidden / m.Shape.Heads) 2 degree
                    [| for (seqs, tokens, ms) in t.Prefill ->
                           false, rooflineMs p (work (float (seqs * tokens)) (float seqs * float tokens * float tokens / 2.0) 0.0), ms
                       for (batch, context, ms) in t.Decode -> true, rooflineMs p (work (float batch) 0.0 (float batch * float context)), ms |]))
        let memoryBound = measured |> Array.filter (fun (_, struct (m, c), _) -> m >= c)
        let computeBound = measured |> Array.filter (fun (_, struct (m, c), _) -> c > m)
        let ms, mf = line (memoryBound |> Array.map (fun (_, struct (m, _), _) -> m)) (memoryBound |> Array.map (fun (_, _, t) -> t)) (1.0 / 0.8)
        let cs, cf = line (computeBound |> Array.map (fun (_, struct (_, c), _) -> c)) (computeBound |> Array.map (fun (_, _, t) -> t)) (1.0 / 0.6)
        { Degree = degree; MemSlope = ms; MemFloorMs = mf; ComputeSlope = cs; ComputeFloorMs = cf }

    /// The degrees the profile measured (any model).
    let degrees (p: GpuStepProfile) = p.Models |> Array.collect (fun m -> m.Tps |> Array.map (fun t -> t.Degree)) |> Array.distinct |> Array.sort

    /// The roofline fitted at the measured degree nearest to `degree` (in log scale), cached.
    let rooflineFit (p: GpuStepProfile) (degree: int) : RooflineFit =
        let measured = degrees p
        let nearest = measured |> Array.minBy (fun d -> abs (log (float d) - log (float (max 1 degree))), d)
        p.RooflineFitCached(nearest, fun () -> fitRoofline p nearest)

    let evalRoofline (f: RooflineFit) (struct (m: float, c: float)) =
        max (f.MemSlope * m + f.MemFloorMs) (f.ComputeSlope * c + f.ComputeFloorMs)

    /// Moves a time measured on the profiled GPU to a GPU with other figures. `m` and `c` are the
    /// step's roofline times on the profiled GPU (rooflineMs). The part of the time the roofline
    /// explains scales with the bound resource (bandwidth-bound by the HBM ratio, compute-bound by
    /// the FLOP/s ratio, vendor figures on both sides); the excess over the roofline is a per-kernel
    /// floor that carries over, in proportion to how bandwidth-bound the step is (small-batch
    /// decode: launch and small-GEMV floors; large prefill: the excess is MFU shortfall, which
    /// scales with the FLOP/s). Equal figures give the measured time back exactly.
    let transfer (p: GpuStepProfile) (target: GpuSpec) (ms: float) (struct (m: float, c: float)) =
        let roof = max m c
        if roof <= 0.0 then ms
        else
            let rbw = p.Gpu.HbmBytesPerSec / target.HbmBytesPerSec
            let rfl = p.Gpu.PeakFlops / target.PeakFlops
            let floor = max 0.0 (ms - roof) * m / (m + c)
            floor + (ms - floor) * max (m * rbw) (c * rfl) / roof

    /// Every measured point against its fit: prefill and decode (fitted), mixed (held out).
    let checkFit (p: GpuStepProfile) : FitCheck list =
        [ for i, pm in Array.indexed p.Models do
              for t in pm.Tps do
                  match layerFit p i t.Degree with
                  | None -> ()
                  | Some f ->
                      let check kind point measured fitted = { Model = pm.Name; Degree = t.Degree; Kind = kind; Point = point; MeasuredMs = measured; FittedMs = fitted }
                      for (seqs, tokens, ms) in t.Prefill do
                          check "prefill" (sprintf "%dx%d" seqs tokens) ms (evalLayer f true (float (seqs * tokens)) (float seqs * float tokens * float tokens / 2.0) 0.0)
                      for (batch, context, ms) in t.Decode do
                          check "decode" (sprintf "b%d c%d" batch context) ms (evalLayer f false (float batch) 0.0 (float batch * float context))
                      for (decodes, context, tokens, ms) in t.Mixed do
                          check "mixed" (sprintf "d%d c%d +%d" decodes context tokens) ms
                              (evalLayer f true (float (decodes + tokens)) (float tokens * float tokens / 2.0) (float decodes * float context)) ]
