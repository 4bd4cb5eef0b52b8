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
      /// Solver work over all stages, in CP-SAT deterministic seconds (a count of solver operations
      /// scaled to about one second of one core); each stage gets a fixed share (StageShares). A
      /// slow or loaded machine takes longer in wall time and reaches the same plan.
      SolveBudget: float
      /// Wall-clock guard per stage, seconds (0: none). A stage it stops is reported as such, since
      /// its answer then depends on the machine's speed and load.
      MaxWallSeconds: float
      /// CP-SAT workers: 1 searches sequentially; more run CP-SAT's interleaved (deterministic) search.
      NumWorkers: int
      RandomSeed: int
      Coefficients: CostCoefficients
      /// Rates and latencies per (config, type); None: the analytic model with Coefficients.
      Service: IServiceModel option
      /// Researcher constraints (F# code; CP-SAT only).
      Constraints: PlannerConstraint list
      /// The built-in constraints as data (YAML, CLI): kept by every planner.
      Rules: ConstraintRule list
      /// Reload mode: new shards always come from storage (the "reload" baseline).
      ReloadFromStorage: bool
      /// When current and new plans serve the same, switch only for this relative mean-latency gain...
      SwitchLatencyGain: float
      /// ...and only if the switch takes less than this fraction of the window.
      MaxSwitchFraction: float
      /// Served rates this close (relative) count as the same when deciding a switch...
      SwitchServedTolerance: float
      /// ...or closer than this many standard deviations of the window's Poisson request count.
      SwitchGainSigmas: float }

    static member Default =
        { Rho = 0.85; MaxPp = 4; RateResolution = 200; Measure = ServedMeasure.Requests; Objective = Lexicographic
          LatencyTolerance = 0.02; SolveBudget = 1.0; MaxWallSeconds = 0.0; NumWorkers = 1; RandomSeed = 1
          Coefficients = CostCoefficients.defaults; Service = None; Constraints = []; Rules = []; ReloadFromStorage = false
          SwitchLatencyGain = 0.05; MaxSwitchFraction = 0.1; SwitchServedTolerance = 0.005; SwitchGainSigmas = 0.0 }

    member o.StageSettings = { NumWorkers = o.NumWorkers; RandomSeed = o.RandomSeed; MaxWallSeconds = o.MaxWallSeconds }

type PlanInput =
    { Cluster: ClusterSpec
      Model: ModelSpec
      Types: TypeDemand[]
      /// The deployment now running (empty for a cold start).
      Current: PlacedReplica[] }

/// The solver's answer: replicas per candidate and routed rate (requests/s) per (candidate, type).
type Solution =
    { Problem: ScaledProblem
      Counts: int[]
      Routed: float[][]
      /// Every stage run, in order (a stage that found nothing is listed too).
      Stages: StageReport list
      /// "Optimal" when every stage proved its optimum; "Feasible" when some stage stopped before
      /// (see Stages); "Heuristic" for the paper's heuristic.
      Status: string
      /// Served (in the Measure's units per second), bound and gap of the first stage.
      Objective: float
      Bound: float
      Gap: float
      WallSeconds: float
      /// Estimated seconds to load the new shards (per the switch term), 0 without a current plan.
      SwitchCostSec: float }

    member s.ServedRate = s.Routed |> Array.sumBy Array.sum
    member s.DemandRate = s.Problem.Types |> Array.sumBy (fun t -> t.Rate)
    /// Stages that did not finish (stopped at their budget or the wall-clock cap, or found nothing).
    member s.UnfinishedStages = s.Stages |> List.filter (fun st -> not st.IsFinished)

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

    /// Fixed shares of the work budget per stage, so no stage's budget depends on how long another
    /// took. Without a current plan there is no switch stage and spread takes its share.
    let stageShare (hasCurrent: bool) (stage: string) =
        match stage with
        | "served" -> 0.4
        | "latency" -> 0.3
        | "switch" -> 0.15
        | "spread" -> if hasCurrent then 0.15 else 0.3
        | _ -> 1.0

    let private size (p: ScaledProblem) (r: IntVar option[][]) =
        let numRoutes = r |> Array.sumBy (Array.sumBy (fun v -> if v.IsSome then 1 else 0))
        sprintf "%d candidate configs in %d node groups, %d routing variables" p.Candidates.Length p.Groups.Length numRoutes

    /// Why the first stage gave no plan, in the user's terms.
    let private noPlan (options: PlannerOptions) (cluster: ClusterSpec) (p: ScaledProblem) (r: IntVar option[][]) (rep: StageReport) =
        let named = (options.Constraints |> List.map (fun k -> k.Name)) @ (options.Rules |> List.map (ConstraintRule.name cluster))
        match rep.Status with
        | StageStatus.Infeasible when named.IsEmpty -> sprintf "CP-SAT proved the model infeasible at stage %s (%s)" rep.Stage (size p r)
        | StageStatus.Infeasible -> sprintf "the constraints cannot all hold together (CP-SAT proved it at stage %s): %s" rep.Stage (String.Join("; ", named))
        | StageStatus.ModelInvalid -> sprintf "CP-SAT rejected the model at stage %s: %s" rep.Stage rep.StoppedBy
        | _ ->
            sprintf "CP-SAT stage %s found no plan within %s (%.3g of %.3g deterministic s, %.1f s wall; %s): raise the planner's max_solve_seconds"
                rep.Stage (if rep.StoppedBy = "" then "its budget" else "its " + rep.StoppedBy) rep.DeterministicTime rep.Budget rep.Seconds (size p r)

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
            options.Constraints @ ConstraintRule.toConstraints cluster options.Rules
            |> List.choose (fun k -> match k.Apply ctx with Ok() -> None | Error e -> Some(sprintf "constraint %s: %s" k.Name e))
        if not constraintErrors.IsEmpty then Error constraintErrors
        else
            let served = LinearExpr.NewBuilder()
            for c in 0 .. nC - 1 do
                for j in 0 .. nJ - 1 do
                    r[c][j] |> Option.iter (fun v -> served.AddTerm(v, p.ServedWeight[j]) |> ignore)
            let latency = LinearExpr.NewBuilder()
            for c in 0 .. nC - 1 do
                for j in 0 .. nJ - 1 do
                    r[c][j] |> Option.iter (fun v -> latency.AddTerm(v, p.LatencyCost[c][j]) |> ignore)
            // Queueing delay per candidate (epigraph of the convex piecewise-linear QueueLines). Added
            // only after the served stage, which does not need them: they are most of the model.
            let queue = Array.zeroCreate<IntVar option> nC
            let addQueue () =
                for c in 0 .. nC - 1 do
                    let lines = p.QueueLines[c]
                    if lines.Length > 0 then
                        let t = model.NewIntVar(0L, int64 (Math.Ceiling(p.QueueTop c)), sprintf "queue_%d" c)
                        for (slopes, b) in lines do
                            let e = LinearExpr.NewBuilder()
                            for j in 0 .. nJ - 1 do
                                r[c][j] |> Option.iter (fun v -> e.AddTerm(v, slopes[j]) |> ignore)
                            e.AddTerm(x[c], b).AddTerm(t, -1L) |> ignore
                            model.AddLinearConstraint(e, low, 0L) |> ignore
                        latency.Add(t) |> ignore
                        queue[c] <- Some t
            let totalGpus = p.TotalGpus
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
            // Every stage starts from the previous stage's plan; queue terms get the value that plan
            // implies (the highest line), so the hint is complete.
            let values (solver: CpSolver) =
                x |> Array.map (fun v -> solver.Value(v)), r |> Array.map (Array.map (function Some v -> solver.Value(v) | None -> 0L))
            let hintWith (xs: int64[], rs: int64[][]) =
                model.ClearHints()
                Array.iter2 (fun (v: IntVar) value -> model.AddHint(v, value)) x xs
                for c in 0 .. nC - 1 do
                    for j in 0 .. nJ - 1 do r[c][j] |> Option.iter (fun v -> model.AddHint(v, rs[c][j]))
                    queue[c] |> Option.iter (fun t ->
                        let top = p.QueueLines[c] |> Array.fold (fun m (slopes, b) -> max m (Array.fold2 (fun s k v -> s + k * v) 0L slopes rs[c] + b * xs[c])) 0L
                        model.AddHint(t, top))
            let hint (solver: CpSolver) = hintWith (values solver)
            // The latency stage starts near its optimum (StartingPoint), not at the served stage's
            // answer. Only without researcher constraints, which the added replicas could break.
            let start (xs: int64[], rs: int64[][]) =
                if not options.Constraints.IsEmpty || not options.Rules.IsEmpty || fixedCounts.IsSome then xs, rs
                else
                    let totals = Array.init nJ (fun j -> rs |> Array.sumBy (fun row -> row[j]))
                    StartingPoint.route p (fun c j -> Option.isSome r.[c].[j]) (StartingPoint.fill p xs rs) totals
                    |> Option.defaultValue (xs, rs)
            let settings = options.StageSettings
            let stage name = SolverStage.run settings model (options.SolveBudget * stageShare hasCurrent name) name
            let finish (solver: CpSolver) (stages: StageReport list) =
                let first = List.head stages
                let counts = x |> Array.map (fun v -> int (solver.Value(v)))
                let raw = r |> Array.map (Array.map (function Some v -> float (solver.Value(v)) * p.RateUnit | None -> 0.0))
                // Demand was rounded up to whole rate units; never route more than the real rate.
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
                     Status = (if stages |> List.forall (fun st -> st.Status = StageStatus.Optimal) then "Optimal" else "Feasible")
                     Objective = scaleOut first.Objective
                     Bound = scaleOut first.Bound
                     Gap = first.Gap
                     WallSeconds = wall.Elapsed.TotalSeconds
                     SwitchCostSec = newCost }
            match options.Objective with
            | Weighted(ws, wl, wsw) ->
                addQueue ()
                let obj = LinearExpr.NewBuilder().AddTerm(served, ws).AddTerm(latency, -wl).AddTerm(switchCost, -wsw)
                model.Maximize(obj)
                let solver, rep = stage "weighted"
                if not rep.HasSolution then Error [ noPlan options cluster p r rep ]
                else
                    let servedValue = float (solver.Value(served))
                    finish solver [ { rep with Objective = servedValue; Bound = nan } ]
            | Lexicographic ->
                model.Maximize(served)
                let s1, rep1 = stage "served"
                if not rep1.HasSolution then Error [ noPlan options cluster p r rep1 ]
                else
                    let best = int64 (Math.Round rep1.Objective)
                    model.AddLinearConstraint(served, best, high) |> ignore
                    addQueue ()
                    hintWith (start (values s1))
                    model.Minimize(latency)
                    let s2, rep2 = stage "latency"
                    if not rep2.HasSolution then finish s1 [ rep1; rep2 ]
                    else
                        let lat = int64 (Math.Round rep2.Objective)
                        let idle = LinearExpr.NewBuilder().Add(totalGpus).AddTerm(used, -1L)
                        // Last stage: the lowest latency (queueing falls as replicas are added), then
                        // the fewest unused GPUs. Latency dominates, so no request is routed to a worse
                        // config just to make room for a replica (the idle-config constraint would
                        // otherwise reward such token routes), and the latency slack is spent only on
                        // the switch cost, never on a worse cold-start deployment. LatencyMagnitude is
                        // kept under latencyLimit (PlanningProblem.scale), so this weight cannot overflow.
                        let spread (bound: int64) (hintFrom: CpSolver) (stages: StageReport list) =
                            model.AddLinearConstraint(latency, 0L, bound) |> ignore
                            hint hintFrom
                            model.Minimize(LinearExpr.NewBuilder().AddTerm(latency, totalGpus + 1L).Add(idle))
                            let s, rep = stage "spread"
                            if rep.HasSolution then finish s (stages @ [ rep ]) else finish hintFrom (stages @ [ rep ])
                        if not hasCurrent then spread lat s2 [ rep1; rep2 ]
                        else
                            let tolerated = int64 (Math.Floor(float lat * (1.0 + options.LatencyTolerance)))
                            model.AddLinearConstraint(latency, 0L, tolerated) |> ignore
                            hint s2
                            model.Minimize(switchCost)
                            let s3, rep3 = stage "switch"
                            if not rep3.HasSolution then finish s2 [ rep1; rep2; rep3 ]
                            else
                                model.AddLinearConstraint(switchCost, 0L, int64 (Math.Round rep3.Objective)) |> ignore
                                spread tolerated s3 [ rep1; rep2; rep3 ]

    /// Everything up to the scaled problem: groups, candidates (with reasons for rejected ones).
    let prepare (options: PlannerOptions) (input: PlanInput) : Result<ScaledProblem, string list> =
        let isolate =
            (options.Constraints |> List.collect (fun k -> k.IsolatedNodes)) @ (options.Rules |> List.collect ConstraintRule.isolatedNodes) |> Set.ofList
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
