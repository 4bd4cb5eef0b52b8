namespace OServe.Planner.Workload

open System

/// A request type: a k-means cluster in (ln input, ln output). Centroid*Tokens are exp of the cluster
/// centre (geometric means); Mean*Tokens are arithmetic means, which the cost model uses because KV
/// memory and work grow linearly with tokens. Spread* are standard deviations in log space.
type RequestType =
    { Id: int
      CentroidInputTokens: float
      CentroidOutputTokens: float
      MeanInputTokens: float
      MeanOutputTokens: float
      SpreadLogInput: float
      SpreadLogOutput: float
      Share: float }

type TypingOptions =
    { NumTypes: int
      Seed: int
      MaxIterations: int }

    static member Default = { NumTypes = 4; Seed = 7; MaxIterations = 100 }

[<RequireQualifiedAccess>]
module RequestTyping =
    let private point (inputTokens: float) (outputTokens: float) =
        struct (log (max 1.0 inputTokens), log (max 1.0 outputTokens))

    let private dist2 (struct (a1: float, b1: float)) (struct (a2: float, b2: float)) =
        (a1 - a2) * (a1 - a2) + (b1 - b2) * (b1 - b2)

    let private nearest (centres: struct (float * float)[]) p =
        let mutable best = 0
        let mutable bestD = Double.MaxValue
        for i in 0 .. centres.Length - 1 do
            let d = dist2 centres[i] p
            if d < bestD then
                bestD <- d
                best <- i
        best

    /// k-means++ seeding then Lloyd iterations; deterministic for a seed. Types are numbered by
    /// ascending centroid input length (then output), so ids are stable across runs and seeds that
    /// find the same clusters.
    let fit (options: TypingOptions) (requests: Request[]) : Result<RequestType[], string> =
        let k = options.NumTypes
        if k < 1 then Error(sprintf "number of types must be >= 1, got %d" k)
        elif requests.Length < k then
            Error(sprintf "need at least %d requests to find %d types, got %d" k k requests.Length)
        else
            let pts = requests |> Array.map (fun r -> point (float r.InputTokens) (float r.OutputTokens))
            let rng = Random(options.Seed)
            let centres = Array.zeroCreate<struct (float * float)> k
            centres[0] <- pts[rng.Next pts.Length]
            let d2 = pts |> Array.map (fun p -> dist2 p centres[0])
            for c in 1 .. k - 1 do
                let total = Array.sum d2
                let pick =
                    if total <= 0.0 then rng.Next pts.Length
                    else
                        let target = rng.NextDouble() * total
                        let mutable acc = 0.0
                        let mutable i = 0
                        while i < pts.Length - 1 && acc + d2[i] < target do
                            acc <- acc + d2[i]
                            i <- i + 1
                        i
                centres[c] <- pts[pick]
                for i in 0 .. pts.Length - 1 do
                    d2[i] <- min d2[i] (dist2 pts[i] centres[c])
            let assign = Array.create pts.Length -1
            let mutable changed = true
            let mutable iter = 0
            while changed && iter < options.MaxIterations do
                changed <- false
                for i in 0 .. pts.Length - 1 do
                    let a = nearest centres pts[i]
                    if a <> assign[i] then
                        assign[i] <- a
                        changed <- true
                let sums = Array.zeroCreate<float> (2 * k)
                let counts = Array.zeroCreate<int> k
                for i in 0 .. pts.Length - 1 do
                    let struct (x, y) = pts[i]
                    sums[2 * assign[i]] <- sums[2 * assign[i]] + x
                    sums[2 * assign[i] + 1] <- sums[2 * assign[i] + 1] + y
                    counts[assign[i]] <- counts[assign[i]] + 1
                for c in 0 .. k - 1 do
                    // An emptied cluster keeps its centre; it may win points back next iteration.
                    if counts[c] > 0 then
                        centres[c] <- struct (sums[2 * c] / float counts[c], sums[2 * c + 1] / float counts[c])
                iter <- iter + 1
            let types =
                [| for c in 0 .. k - 1 do
                       let members = [| for i in 0 .. pts.Length - 1 do if assign[i] = c then yield i |]
                       if members.Length > 0 then
                           let struct (cx, cy) = centres[c]
                           let sd f =
                               sqrt (members |> Array.averageBy (fun i -> let v = f pts[i] in v * v))
                           yield
                               { Id = 0
                                 CentroidInputTokens = exp cx
                                 CentroidOutputTokens = exp cy
                                 MeanInputTokens = members |> Array.averageBy (fun i -> float requests[i].InputTokens)
                                 MeanOutputTokens = members |> Array.averageBy (fun i -> float requests[i].OutputTokens)
                                 SpreadLogInput = sd (fun (struct (x, _)) -> x - cx)
                                 SpreadLogOutput = sd (fun (struct (_, y)) -> y - cy)
                                 Share = float members.Length / float pts.Length } |]
                |> Array.sortBy (fun t -> t.CentroidInputTokens, t.CentroidOutputTokens)
                |> Array.mapi (fun i t -> { t with Id = i })
            Ok types

    /// Types a live request by its prompt length and max_tokens (or a predicted output length).
    let classify (types: RequestType[]) (promptTokens: int) (outputTokens: int) : int =
        let centres = types |> Array.map (fun t -> point t.CentroidInputTokens t.CentroidOutputTokens)
        types[nearest centres (point (float promptTokens) (float outputTokens))].Id

    /// Arrival rate (requests/s) per type per window: result[type][window]. The last partial window
    /// is dropped so every value is a rate over a full window.
    let rateSeries (types: RequestType[]) (windowSec: float) (requests: Request[]) : float[][] =
        if windowSec <= 0.0 then invalidArg "windowSec" "window must be > 0 s"
        let duration = if requests.Length = 0 then 0.0 else requests |> Array.maxBy (fun r -> r.Arrival) |> fun r -> r.Arrival
        let numWindows = max 1 (int (floor (duration / windowSec)))
        let counts = Array.init types.Length (fun _ -> Array.zeroCreate<float> numWindows)
        let centres = types |> Array.map (fun t -> point t.CentroidInputTokens t.CentroidOutputTokens)
        for r in requests do
            let w = int (r.Arrival / windowSec)
            if w < numWindows then
                let j = nearest centres (point (float r.InputTokens) (float r.OutputTokens))
                counts[j][w] <- counts[j][w] + 1.0
        counts |> Array.map (Array.map (fun c -> c / windowSec))
