namespace OServe.Planner.Solver

open System
open System.Diagnostics
open Google.OrTools.Sat
open OServe.Planner.CostModel

type PlannerOptions =
    { /// Target utilization: routed load <= Rho * capacity of the replicas.
      Rho: float
      MaxPp: int
      /// Rate units given to the busiest type (integer resolution of routing).
      RateResolution: int
      Measure: ServedMeasure
      Objective: ObjectiveMode
      /// Lexicographic: the switch stage may accept a latency this much (relative) above the best.
      LatencyTolerance: float
      MaxSolveSeconds: float
      NumWorkers: int
      Coefficients: CostCoefficients
      /// Rates and latencies per (config, type); None: the analytic model with Coefficients.
      Service: IServiceModel option
      Constraints: PlannerConstraint list
      /// Reload mode: new shards always come from storage (the "reload" baseline).
      ReloadFromStorage: bool
      /// When current and new plans serve the same, switch only for this relative mean-latency gain...
      SwitchLatencyGain: float
      /// ...and only if the switch takes less than this fraction of the window.
      MaxSwitchFraction: float }

    static member Default =
        { Rho = 0.85; MaxPp = 4; RateResolution = 200; Measure = ServedMeasure.Requests; Objective = Lexicographic
          LatencyTolerance = 0.02; MaxSolveSeconds = 2.0; NumWorkers = 2; Coefficients = CostCoefficients.defaults
          Service = None; Constraints = []; ReloadFromStorage = false; SwitchLatencyGain = 0.05; MaxSwitchFraction = 0.1 }

type PlanInput =
    { Cluster: ClusterSpec
      Model: ModelSpec
      Types: TypeDemand[]
      /// The deployment now running (empty for a cold start).
      Current: PlacedReplica[] }

type StageReport =
    { Stage: string
      Status: string
      Objective: float
      Bound: float
      Seconds: float }

/// The solver's answer: replicas per candidate and routed rate (requests/s) per (candidate, type).
type Solution =
    { Problem: ScaledProblem
      Counts: int[]
      Routed: float[][]
      Stages: StageReport list
      /// Status, objective (served, in the Measure's units per second), bound and gap of the first stage.
      Status: string
      Objective: float
      Bound: float
      Gap: float
      WallSeconds: float
      /// Estimated seconds to load the new shards (per the switch term), 0 without a current plan.
      SwitchCostSec: float }

    member s.ServedRate = s.Routed |> Array.sumBy Array.sum
    member s.DemandRate = s.Problem.Types |> Array.sumBy (fun t -> t.Rate)

[<RequireQualifiedAccess>]
module CpSatPlanner =
    let private low = -(1L <<< 60)
    let private high = 1L <<< 60

    /// Current replicas counted per candidate (same GPU type, TP, PP, and group of its first device).
    let currentCounts (p: ScaledProblem) (current: PlacedReplica[]) : int[] =
        let counts = Array.zeroCreate p.Candidates.Length
        for r in current do
            if r.Devices.Length > 0 then
                let node = fst r.Devices[0]
                match p.Groups |> Array.tryFind (fun g -> Array.contains node g.Nodes) with
                | Some g ->
                    match p.Candidates |> Array.tryFind (fun c -> c.Group = g.Index && c.Config.Gpu.Name = r.Config.Gpu.Name && c.Config.Tp = r.Config.Tp && c.Config.Pp = r.Config.Pp) with
                    | Some c -> counts[c.Index] <- counts[c.Index] + 1
                    | None -> ()
                | None -> ()
        counts

    /// Seconds to bring one new replica's shards in: over the node link from a peer (hot) or from storage.
    let shardLoadSec (options: PlannerOptions) (p: ScaledProblem) (c: Candidate) =
        let g = p.Groups[c.Group]
        let bw = if options.ReloadFromStorage then options.Coefficients.StorageBytesPerSec else g.IntraLinkBytesPerSec * options.Coefficients.LinkEfficiency
        float c.Memory.WeightBytesPerGpu / bw

    let private statusText (s: CpSolverStatus) = s.ToString()

    let private solveStage (options: PlannerOptions) (model: CpModel) (seconds: float) (stage: string) =
        let solver = new CpSolver()
        // OSERVE_CPSAT_LOG=1 prints CP-SAT's search log (for diagnosing slow stages).
        let logging = Environment.GetEnvironmentVariable "OSERVE_CPSAT_LOG" = "1"
        solver.StringParameters <-
            sprintf "num_workers:%d, max_time_in_seconds:%s, random_seed:1, linearization_level:2%s" (max 1 options.NumWorkers)
                ((max 0.05 seconds).ToString(Globalization.CultureInfo.InvariantCulture)) (if logging then ", log_search_progress:true" else "")
        if logging then
            solver.SetLogCallback(fun (line: string | null) -> Console.Error.WriteLine("[" + stage + "] " + string line))
        let sw = Stopwatch.StartNew()
        let status = solver.Solve(model)
        let ok = status = CpSolverStatus.Optimal || status = CpSolverStatus.Feasible
        let report =
            { Stage = stage; Status = statusText status
              Objective = (if ok then solver.ObjectiveValue else nan)
              Bound = (if ok then solver.BestObjectiveBound else nan)
              Seconds = sw.Elapsed.TotalSeconds }
        solver, ok, report

    /// Builds and solves the model for an already scaled problem. `fixedCounts` pins X (used to
    /// evaluate an existing deployment's best routing).
    let solveScaled (options: PlannerOptions) (cluster: ClusterSpec) (p: ScaledProblem) (current: int[])
                    (fixedCounts: int[] option) : Result<Solution, string list> =
        let wall = Stopwatch.StartNew()
        let model = CpModel()
        let nC, nJ = p.Candidates.Length, p.Types.Length
        let x =
            Array.init nC (fun c ->
                match fixedCounts with
                | Some f -> model.NewIntVar(int64 f[c], int64 f[c], sprintf "x_%d" c)
                | None -> model.NewIntVar(0L, p.MaxCount[c], sprintf "x_%s_g%d" p.Candidates[c].Config.Label p.Candidates[c].Group))
        let r =
            Array.init nC (fun c ->
                Array.init nJ (fun j ->
                    if p.Allowed c j && p.Demand[j] > 0L then Some(model.NewIntVar(0L, p.Demand[j], sprintf "r_%d_%d" c j)) else None))
        // Node-group capacity.
        for g in p.Groups do
            let b = LinearExpr.NewBuilder()
            for c in p.Candidates do
                if c.Group = g.Index then b.AddTerm(x[c.Index], int64 c.Config.Size) |> ignore
            model.AddLinearConstraint(b, 0L, int64 g.NumGpus) |> ignore
        // Demand per type.
        for j in 0 .. nJ - 1 do
            let b = LinearExpr.NewBuilder()
            for c in 0 .. nC - 1 do
                r[c][j] |> Option.iter (fun v -> b.Add(v) |> ignore)
            model.AddLinearConstraint(b, 0L, p.Demand[j]) |> ignore
        // Load within rho of capacity: sum_j r_cj * w_cj - cap * x_c <= 0.
        for c in 0 .. nC - 1 do
            let b = LinearExpr.NewBuilder()
            for j in 0 .. nJ - 1 do
                r[c][j] |> Option.iter (fun v -> b.AddTerm(v, p.LoadWeight[c][j]) |> ignore)
            b.AddTerm(x[c], -p.LoadCapacity) |> ignore
            model.AddLinearConstraint(b, low, 0L) |> ignore
        // No idle configs: a config carries routed load or has no replicas (x_c <= MaxCount * sum_j r_cj).
        // Without this the "fewest unused GPUs" stage parks replicas that get no traffic on spare
        // GPUs; with it, spare GPUs go to more replicas of configs that serve, which lowers their
        // queueing. Fixed counts (evaluating a given deployment) are left as they are.
        if fixedCounts.IsNone then
            for c in 0 .. nC - 1 do
                let b = LinearExpr.NewBuilder().Add(x[c])
                for j in 0 .. nJ - 1 do
                    r[c][j] |> Option.iter (fun v -> b.AddTerm(v, -p.MaxCount[c]) |> ignore)
                model.AddLinearConstraint(b, low, 0L) |> ignore
        let ctx = { Model = model; Problem = p; Cluster = cluster; X = x; R = r }
        let constraintErrors =
            options.Constraints
            |> List.choose (fun k -> match k.Apply ctx with Ok() -> None | Error e -> Some(sprintf "constraint %s: %s" k.Name e))
        if not constraintErrors.IsEmpty then Error constraintErrors
        else
            let served = LinearExpr.NewBuilder()
            let latency = LinearExpr.NewBuilder()
            for c in 0 .. nC - 1 do
                for j in 0 .. nJ - 1 do
                    r[c][j] |> Option.iter (fun v ->
                        served.AddTerm(v, p.ServedWeight[j]) |> ignore
                        latency.AddTerm(v, p.LatencyCost[c][j]) |> ignore)
            // Queueing delay per candidate (epigraph of the convex piecewise-linear QueueLines).
            for c in 0 .. nC - 1 do
                let lines = p.QueueLines[c]
                if lines.Length > 0 then
                    let top =
                        lines |> Array.fold (fun m (slopes, b) ->
                            let routedMax = Array.init nJ (fun j -> slopes[j] * p.Demand[j]) |> Array.sum
                            max m (routedMax + max 0L b * p.MaxCount[c])) 1L
                    let t = model.NewIntVar(0L, top, sprintf "queue_%d" c)
                    for (slopes, b) in lines do
                        let e = LinearExpr.NewBuilder()
                        for j in 0 .. nJ - 1 do
                            r[c][j] |> Option.iter (fun v -> e.AddTerm(v, slopes[j]) |> ignore)
                        e.AddTerm(x[c], b).AddTerm(t, -1L) |> ignore
                        model.AddLinearConstraint(e, low, 0L) |> ignore
                    latency.Add(t) |> ignore
            let totalGpus = p.Groups |> Array.sumBy (fun g -> int64 g.NumGpus)
            let used = LinearExpr.NewBuilder()
            for c in p.Candidates do used.AddTerm(x[c.Index], int64 c.Config.Size) |> ignore
            // Switch cost: new replicas beyond the current count, each paying its shard load time (10 ms units).
            let hasCurrent = current |> Array.exists (fun v -> v > 0)
            let switchCost = LinearExpr.NewBuilder()
            let unitCost = p.Candidates |> Array.map (fun c -> max 1L (int64 (Math.Ceiling(shardLoadSec options p c * 100.0))))
            if hasCurrent then
                for c in 0 .. nC - 1 do
                    let d = model.NewIntVar(0L, p.MaxCount[c], sprintf "new_%d" c)
                    let diff = LinearExpr.NewBuilder().Add(d).AddTerm(x[c], -1L)
                    model.AddLinearConstraint(diff, -int64 current[c], high) |> ignore
                    switchCost.AddTerm(d, unitCost[c]) |> ignore
            let hint (solver: CpSolver) =
                model.ClearHints()
                for v in x do model.AddHint(v, solver.Value(v))
                for row in r do
                    for v in row do v |> Option.iter (fun v -> model.AddHint(v, solver.Value(v)))
            let budget = options.MaxSolveSeconds
            let finish (solver: CpSolver) (stages: StageReport list) =
                let first = List.head stages
                let counts = x |> Array.map (fun v -> int (solver.Value(v)))
                let raw = r |> Array.map (Array.map (function Some v -> float (solver.Value(v)) * p.RateUnit | None -> 0.0))
                // Demand was rounded to whole rate units; never route more than the real rate.
                let routed =
                    let factor = Array.init nJ (fun j ->
                        let total = raw |> Array.sumBy (fun row -> row[j])
                        if total > p.Types[j].Rate && total > 0.0 then p.Types[j].Rate / total else 1.0)
                    raw |> Array.map (Array.mapi (fun j v -> v * factor[j]))
                let newCost =
                    if hasCurrent then
                        Array.init nC (fun c -> float (max 0 (counts[c] - current[c])) * shardLoadSec options p p.Candidates[c]) |> Array.fold max 0.0
                    else 0.0
                let scaleOut v = v * p.RateUnit
                Ok { Problem = p; Counts = counts; Routed = routed; Stages = stages
                     Status = first.Status
                     Objective = scaleOut first.Objective
                     Bound = scaleOut first.Bound
                     Gap = (if first.Bound = 0.0 then 0.0 else abs (first.Bound - first.Objective) / max 1.0 (abs first.Bound))
                     WallSeconds = wall.Elapsed.TotalSeconds
                     SwitchCostSec = newCost }
            match options.Objective with
            | Weighted(ws, wl, wsw) ->
                let obj = LinearExpr.NewBuilder().AddTerm(served, ws).AddTerm(latency, -wl).AddTerm(switchCost, -wsw)
                model.Maximize(obj)
                let solver, ok, rep = solveStage options model budget "weighted"
                if not ok then Error [ sprintf "CP-SAT found no solution (%s)" rep.Status ]
                else
                    let servedValue = float (solver.Value(served))
                    finish solver [ { rep with Objective = servedValue } ]
            | Lexicographic ->
                model.Maximize(served)
                let s1, ok1, rep1 = solveStage options model (budget * 0.5) "served"
                if not ok1 then Error [ sprintf "CP-SAT found no solution (%s)" rep1.Status ]
                else
                    let best = int64 (Math.Round rep1.Objective)
                    model.AddLinearConstraint(served, best, high) |> ignore
                    hint s1
                    model.Minimize(latency)
                    let s2, ok2, rep2 = solveStage options model (budget * 0.3) "latency"
                    if not ok2 then finish s1 [ rep1; rep2 ]
                    else
                        let lat = int64 (Math.Round rep2.Objective)
                        let idle = LinearExpr.NewBuilder().Add(totalGpus).AddTerm(used, -1L)
                        // Last stage: the lowest latency (queueing falls as replicas are added), then
                        // the fewest unused GPUs. Latency dominates, so no request is routed to a worse
                        // config just to make room for a replica (the idle-config constraint would
                        // otherwise reward such token routes), and the latency slack is spent only on
                        // the switch cost, never on a worse cold-start deployment.
                        let spread (bound: int64) (hintFrom: CpSolver) (stages: StageReport list) =
                            model.AddLinearConstraint(latency, 0L, bound) |> ignore
                            hint hintFrom
                            model.Minimize(LinearExpr.NewBuilder().AddTerm(latency, totalGpus + 1L).Add(idle))
                            let s, ok, rep = solveStage options model (budget * 0.2) "spread"
                            if ok then finish s (stages @ [ rep ]) else finish hintFrom (stages @ [ rep ])
                        if not hasCurrent then spread lat s2 [ rep1; rep2 ]
                        else
                            model.AddLinearConstraint(latency, 0L, int64 (Math.Floor(float lat * (1.0 + options.LatencyTolerance)))) |> ignore
                            hint s2
                            model.Minimize(switchCost)
                            let s3, ok3, rep3 = solveStage options model (budget * 0.2) "switch"
                            if not ok3 then finish s2 [ rep1; rep2; rep3 ]
                            else
                                model.AddLinearConstraint(switchCost, 0L, int64 (Math.Round rep3.Objective)) |> ignore
                                spread (int64 (Math.Floor(float lat * (1.0 + options.LatencyTolerance)))) s3 [ rep1; rep2; rep3 ]

    /// Everything up to the scaled problem: groups, candidates (with reasons for rejected ones).
    let prepare (options: PlannerOptions) (input: PlanInput) : Result<ScaledProblem, string list> =
        let isolate = options.Constraints |> List.collect (fun k -> k.IsolatedNodes) |> Set.ofList
        let groups = PlanningProblem.groups input.Cluster isolate
        let cands, rejected =
            let service = options.Service |> Option.defaultWith (fun () -> AnalyticServiceModel(options.Coefficients) :> IServiceModel)
            PlanningProblem.candidates options.Coefficients service input.Model input.Cluster groups input.Types options.Rho options.MaxPp
        if input.Cluster.Nodes.Length = 0 then Error [ "the cluster has no nodes" ]
        elif cands.Length = 0 then
            Error(sprintf "%s fits no replica configuration on this cluster (tried TP and PP powers of two up to a node and PP %d):" input.Model.Name options.MaxPp
                  :: (rejected |> List.truncate 6 |> List.map (fun s -> "  " + s)))
        else Ok(PlanningProblem.scale groups cands input.Types options.Rho options.RateResolution options.Measure)

    let solve (options: PlannerOptions) (input: PlanInput) : Result<Solution, string list> =
        prepare options input
        |> Result.bind (fun p -> solveScaled options input.Cluster p (currentCounts p input.Current) None)

    /// Best routing for fixed replica counts (e.g. the current deployment under a new forecast).
    let evaluate (options: PlannerOptions) (input: PlanInput) (counts: ScaledProblem -> int[]) : Result<Solution, string list> =
        prepare options input
        |> Result.bind (fun p ->
            let fixedCounts = counts p
            solveScaled { options with Objective = Lexicographic } input.Cluster p (Array.zeroCreate p.Candidates.Length) (Some fixedCounts))
