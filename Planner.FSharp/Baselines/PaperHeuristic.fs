namespace OServe.Planner.Baselines

open System
open System.Diagnostics
open OServe.Planner.Solver

/// The OServe paper's own planner, on our cost model: routing by max-flow over source -> type ->
/// replica config -> sink, and greedy moves of GPUs from the least used replicas to configs that
/// serve the most under-served type, stopping after 20 moves without improvement.
/// Max-flow needs one capacity per replica while load depends on the mix of types; like the
/// paper, a replica's capacity is its rate on the demand mix (harmonic mean of per-type rates
/// weighted by demand), and an edge type -> replica is capped by that type's own rate.
[<RequireQualifiedAccess>]
module PaperHeuristic =
    /// Edmonds-Karp on a dense capacity matrix (graphs here have a few dozen nodes).
    let maxFlow (capacity: float[,]) (source: int) (sink: int) : float[,] =
        let n = Array2D.length1 capacity
        let flow = Array2D.zeroCreate<float> n n
        let mutable augmenting = true
        while augmenting do
            let parent = Array.create n -1
            parent[source] <- source
            let queue = Collections.Generic.Queue<int>([ source ])
            while queue.Count > 0 && parent[sink] < 0 do
                let u = queue.Dequeue()
                for v in 0 .. n - 1 do
                    if parent[v] < 0 && (capacity[u, v] - flow[u, v] > 1e-12 || flow[v, u] > 1e-12) then
                        parent[v] <- u
                        queue.Enqueue v
            if parent[sink] < 0 then augmenting <- false
            else
                let mutable bottleneck = Double.MaxValue
                let mutable v = sink
                while v <> source do
                    let u = parent[v]
                    let avail = if capacity[u, v] - flow[u, v] > 1e-12 then capacity[u, v] - flow[u, v] else flow[v, u]
                    bottleneck <- min bottleneck avail
                    v <- u
                v <- sink
                while v <> source do
                    let u = parent[v]
                    if capacity[u, v] - flow[u, v] > 1e-12 then flow[u, v] <- flow[u, v] + bottleneck
                    else flow[v, u] <- flow[v, u] - bottleneck
                    v <- u
        flow

    /// Routing for fixed counts: rates per (candidate, type) within rho of each replica's capacity.
    let route (rho: float) (p: ScaledProblem) (counts: int[]) : float[][] =
        let nC, nJ = p.Candidates.Length, p.Types.Length
        let source, sink = 0, 1 + nJ + nC
        let cap = Array2D.zeroCreate<float> (nJ + nC + 2) (nJ + nC + 2)
        let total = p.Types |> Array.sumBy (fun t -> t.Rate)
        for j in 0 .. nJ - 1 do cap[source, 1 + j] <- p.Types[j].Rate
        for c in 0 .. nC - 1 do
            if counts[c] > 0 then
                let cand = p.Candidates[c]
                let mutable inv = 0.0
                for j in 0 .. nJ - 1 do
                    if p.Allowed c j then
                        cap[1 + j, 1 + nJ + c] <- rho * float counts[c] * cand.Service[j].Rate
                        inv <- inv + (if total > 0.0 then p.Types[j].Rate / total else 1.0 / float nJ) / cand.Service[j].Rate
                if inv > 0.0 then cap[1 + nJ + c, sink] <- rho * float counts[c] / inv
        let flow = maxFlow cap source sink
        Array.init nC (fun c ->
            let raw = Array.init nJ (fun j -> flow[1 + j, 1 + nJ + c])
            // The mix a replica actually gets may differ from the demand mix: scale down to rho.
            let load = raw |> Array.mapi (fun j v -> if v > 0.0 then v / p.Candidates[c].Service[j].Rate else 0.0) |> Array.sum
            let limit = rho * float counts[c]
            if load > limit && load > 0.0 then raw |> Array.map (fun v -> v * limit / load) else raw)

    let private score (p: ScaledProblem) (routed: float[][]) =
        let served = routed |> Array.sumBy Array.sum
        let latency = routed |> Array.mapi (fun c row -> row |> Array.mapi (fun j v -> v * float (p.LatencyCost[c][j])) |> Array.sum) |> Array.sum
        served, latency

    let private better (s1: float, l1: float) (s2: float, l2: float) =
        s1 > s2 * (1.0 + 1e-9) + 1e-9 || (abs (s1 - s2) <= 1e-9 * max 1.0 s2 && l1 < l2 * (1.0 - 1e-9))

    let solve (options: PlannerOptions) (input: PlanInput) : Result<Solution, string list> =
        let wall = Stopwatch.StartNew()
        CpSatPlanner.prepare options input
        |> Result.bind (fun p ->
            let nC = p.Candidates.Length
            // The built-in constraints: GPUs kept free leave the group's pool, forbidden configs are
            // never used, pinned replicas are there from the start and never given away, and every
            // move is checked against the rest (max_replicas).
            let rules = options.Rules
            let allowed (c: Candidate) = rules |> List.forall (fun r -> not (ConstraintRule.forbids r c.Config))
            let keeps (counts: int[]) = ConstraintRule.violations rules input.Cluster p counts |> List.isEmpty
            let minimum = ConstraintRule.minimums rules p
            let free (counts: int[]) g =
                p.Groups[g].NumGpus - ConstraintRule.reserved rules p g
                - (p.Candidates |> Array.sumBy (fun c -> if c.Group = g then counts[c.Index] * c.Config.Size else 0))
            // Start: the pinned replicas, then in each group the smallest allowed replica over every GPU left.
            let start = Array.copy minimum
            for g in p.Groups do
                match p.Candidates |> Array.filter (fun c -> c.Group = g.Index && allowed c) |> Array.sortBy (fun c -> c.Config.Size, c.Config.Pp) |> Array.tryHead with
                | Some c ->
                    start[c.Index] <- start[c.Index] + max 0 (free start g.Index) / c.Config.Size
                    while start[c.Index] > minimum[c.Index] && not (keeps start) do start[c.Index] <- start[c.Index] - 1
                | None -> ()
            let mutable current = start
            let mutable currentRoute = route options.Rho p current
            let mutable best = current
            let mutable bestScore = score p currentRoute
            let mutable stale = 0
            let mutable steps = 0
            while stale < 20 && steps < 500 do
                steps <- steps + 1
                let unserved j = p.Types[j].Rate - (currentRoute |> Array.sumBy (fun row -> row[j]))
                let needy = [| 0 .. p.Types.Length - 1 |] |> Array.maxBy unserved
                let utilization c =
                    if current[c] = 0 then infinity
                    else (currentRoute[c] |> Array.mapi (fun j v -> if v > 0.0 then v / p.Candidates[c].Service[j].Rate else 0.0) |> Array.sum) / float current[c]
                let donorsAll = [| 0 .. nC - 1 |] |> Array.filter (fun c -> current[c] > 0) |> Array.sortBy utilization
                let donors = donorsAll |> Array.truncate 3
                let receivers g =
                    p.Candidates
                    |> Array.filter (fun c -> c.Group = g && p.Allowed c.Index needy && allowed c)
                    |> Array.sortByDescending (fun c -> c.Service[needy].Rate / float c.Config.Size)
                    |> Array.truncate 3
                // A move frees GPUs from the least utilized replicas (one donor config first, then
                // the next) until one replica of a receiver config fits, and adds it.
                let moveTo (r: Candidate) (donorOrder: int[]) =
                    let next = Array.copy current
                    let g = r.Group
                    let mutable i = 0
                    while free next g < r.Config.Size && i < donorOrder.Length do
                        let d = donorOrder[i]
                        if p.Candidates[d].Group = g && next[d] > minimum[d] && d <> r.Index then next[d] <- next[d] - 1
                        else i <- i + 1
                    if free next g >= r.Config.Size then
                        next[r.Index] <- next[r.Index] + free next g / r.Config.Size
                        while next[r.Index] > current[r.Index] && not (keeps next) do next[r.Index] <- next[r.Index] - 1
                        if next[r.Index] > current[r.Index] && keeps next then Some next else None
                    else None
                let moves =
                    [| for d in donors do
                         for r in receivers p.Candidates[d].Group do
                             if r.Index <> d then
                                 match moveTo r (Array.append [| d |] (donors |> Array.filter ((<>) d))) with
                                 | Some next -> yield next
                                 | None -> () |]
                if moves.Length = 0 then stale <- 20
                else
                    let scored = moves |> Array.map (fun m -> let rt = route options.Rho p m in m, rt, score p rt)
                    let m, rt, sc = scored |> Array.reduce (fun a b -> let (_, _, sa), (_, _, sb) = a, b in if better sb sa then b else a)
                    current <- m
                    currentRoute <- rt
                    if better sc bestScore then
                        best <- m
                        bestScore <- sc
                        stale <- 0
                    else stale <- stale + 1
            let routed = route options.Rho p best
            let served = fst bestScore
            Ok { Problem = p; Counts = best; Routed = routed
                 Stages = [ { Stage = sprintf "greedy (%d moves)" steps; Status = StageStatus.Heuristic; Objective = served; Bound = nan
                              DeterministicTime = 0.0; Budget = 0.0; Seconds = wall.Elapsed.TotalSeconds; StoppedBy = "" } ]
                 Status = "Heuristic"; Objective = served; Bound = nan; Gap = nan; WallSeconds = wall.Elapsed.TotalSeconds; SwitchCostSec = 0.0 })
