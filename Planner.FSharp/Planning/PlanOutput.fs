namespace OServe.Planner.Planning

open System
open System.Collections.Generic
open System.Text
open OServe.Contracts
open OServe.Planner.CostModel
open OServe.Planner.Solver
open OServe.Planner.Switching

/// Turns a solution placed on GPUs into the plan contract, its printed summary and its warnings.
[<RequireQualifiedAccess>]
module PlanOutput =
    let private err field message = { Field = field; Message = message }

    /// Mean E2E latency estimate (s) over the routed traffic, each config at its own utilization.
    let meanLatency (s: Solution) =
        let served = s.ServedRate
        if served <= 0.0 then 0.0
        else
            let p = s.Problem
            let total =
                p.Candidates |> Array.sumBy (fun c ->
                    let row = s.Routed[c.Index]
                    if s.Counts[c.Index] = 0 || Array.sum row <= 0.0 then 0.0
                    else
                        let u = (row |> Array.mapi (fun j v -> if v > 0.0 then v / c.Service[j].Rate else 0.0) |> Array.sum) / float s.Counts[c.Index]
                        let e = c.EstimateAt(min 0.99 u)
                        row |> Array.mapi (fun j v -> if v > 0.0 then v * e[j].E2eSec else 0.0) |> Array.sum)
            total / served

    /// The candidate a placed replica is an instance of (same group, GPU type, TP and PP).
    let candidateOf (p: ScaledProblem) (r: PlacedReplica) =
        let n = fst r.Devices[0]
        p.Candidates |> Array.tryFind (fun c ->
            Array.contains n p.Groups[c.Group].Nodes && c.Config.Tp = r.Config.Tp && c.Config.Pp = r.Config.Pp && c.Config.Gpu.Name = r.Config.Gpu.Name)

    let utilization (p: ScaledProblem) (d: Deployment) (i: int) =
        match candidateOf p d.Replicas[i] with
        | Some c -> d.RatePerReplica[i] |> Array.mapi (fun j v -> if v > 0.0 then v / c.Service[j].Rate else 0.0) |> Array.sum
        | None -> 0.0

    /// Routing weights of type j: the share of its rate each replica takes. A type the solve routed
    /// nowhere (forecast 0, or no capacity left for it) still gets a route, so a request of it that
    /// arrives is served: the replicas whose config may serve it, by their rate for it; failing
    /// that, the replicas with the lowest light-load latency for it. The bool says which applied.
    let routingWeights (p: ScaledProblem) (d: Deployment) (j: int) : Dictionary<string, float> * bool =
        let rate = p.Types[j].Rate
        let w = Dictionary<string, float>()
        d.Replicas |> Array.iteri (fun i r -> if d.RatePerReplica[i][j] > 0.0 && rate > 0.0 then w[r.Id] <- Math.Round(d.RatePerReplica[i][j] / rate, 6))
        if w.Count > 0 || d.Replicas.Length = 0 then w, false
        else
            let withCandidate = d.Replicas |> Array.choose (fun r -> candidateOf p r |> Option.map (fun c -> r, c))
            let allowed = withCandidate |> Array.filter (fun (_, c) -> p.Allowed c.Index j)
            let chosen =
                if allowed.Length > 0 then allowed |> Array.map (fun (r, c) -> r, c.Service[j].Rate)
                elif withCandidate.Length > 0 then
                    let latency (c: Candidate) = c.Service[j].E2eSec
                    let best = withCandidate |> Array.map (snd >> latency) |> Array.min
                    withCandidate |> Array.filter (fun (_, c) -> latency c = best) |> Array.map (fun (r, _) -> r, 1.0)
                else d.Replicas |> Array.map (fun r -> r, 1.0)
            let total = chosen |> Array.sumBy snd
            for (r, v) in chosen do
                w[r.Id] <- Math.Round((if total > 0.0 then v / total else 1.0 / float chosen.Length), 6)
            w, true

    let private stepKind (k: StepKind) =
        match k with
        | StepKind.Keep -> SwitchStepKind.Keep
        | StepKind.Drain -> SwitchStepKind.Drain
        | StepKind.MoveKv -> SwitchStepKind.MoveKv
        | StepKind.CopyShard -> SwitchStepKind.CopyShard
        | StepKind.LoadShard -> SwitchStepKind.LoadShard
        | StepKind.Stop -> SwitchStepKind.Stop
        | _ -> SwitchStepKind.Start

    let private finite v = if Double.IsFinite v then Nullable(Math.Round(v, 6)) else Nullable()

    let stage (st: StageReport) : SolveStage =
        SolveStage(Name = st.Stage, Status = enum<SolveStageStatus> (int st.Status), Objective = finite st.Objective, Bound = finite st.Bound,
                   DeterministicTime = finite st.DeterministicTime, Budget = finite st.Budget, WallSeconds = finite st.Seconds,
                   StoppedBy = (if st.StoppedBy = "" then null else st.StoppedBy))

    let toPlan (req: PlanRequest) (spec: ClusterSpec) (kind: string) (types: TypeDemand[]) (s: Solution) (d: Deployment)
               (switch: SwitchSchedule) (fromVersion: int) : Plan =
        let dev = ContractMapping.deviceText spec
        let replicas =
            d.Replicas |> Array.map (fun r ->
                ReplicaSpec(Id = r.Id, GpuType = r.Config.Gpu.Name, Devices = (r.Devices |> Array.map dev :> IReadOnlyList<string>),
                            Tp = r.Config.Tp, Pp = r.Config.Pp, MaxNumSeqs = req.Coefficients.MaxNumSeqs))
        let routing =
            types |> Array.mapi (fun j t ->
                RoutingEntry(Type = t.Name, Weights = (fst (routingWeights s.Problem d j) :> IReadOnlyDictionary<string, float>)))
        let maxUtil = if d.Replicas.Length = 0 then 0.0 else Array.init d.Replicas.Length (utilization s.Problem d) |> Array.max
        let steps =
            switch.Steps |> Array.map (fun st ->
                SwitchStep(Kind = stepKind st.Kind, Replica = st.Replica, Device = (st.Device |> Option.map dev |> Option.toObj),
                           Source = (match st.Kind, st.Source with
                                     | StepKind.LoadShard, _ -> "storage"
                                     | _, Some src -> dev src
                                     | _, None -> null),
                           Bytes = st.Bytes, EstSeconds = Math.Round(st.EstSeconds, 4)))
        let switchPlan =
            SwitchPlan(FromVersion = fromVersion, Steps = (steps :> IReadOnlyList<SwitchStep>), TotalBytes = switch.TotalBytes, EstSeconds = Math.Round(switch.EstSeconds, 4))
        Plan(Version = fromVersion + 1, Model = req.Model.Name, Cluster = req.Cluster.Name, Planner = kind,
             Window = PlanWindow(StartS = req.WindowStartS, LengthS = req.WindowS),
             RequestTypes = (types |> Array.map (fun t -> RequestTypeSpec(Name = t.Name, InputTokens = Math.Round(t.InputTokens, 1), OutputTokens = Math.Round(t.OutputTokens, 1), RateRps = Math.Round(t.Rate, 6))) :> IReadOnlyList<RequestTypeSpec>),
             Replicas = (replicas :> IReadOnlyList<ReplicaSpec>),
             Routing = (routing :> IReadOnlyList<RoutingEntry>),
             Predicted = PredictedFigures(DemandRps = Math.Round(s.DemandRate, 6), ServedRps = Math.Round(s.ServedRate, 6), MaxUtilization = Math.Round(maxUtil, 4),
                                          MeanLatencyS = finite (meanLatency s), SolveStatus = s.Status, Objective = finite s.Objective,
                                          Bound = finite s.Bound, Gap = finite s.Gap, SolveSeconds = finite s.WallSeconds,
                                          Stages = (s.Stages |> List.map stage |> Array.ofList :> IReadOnlyList<SolveStage>)),
             Switch = switchPlan)

    /// What the user should know beyond the table: unserved demand, stages that stopped early,
    /// types routed by the fallback.
    let warnings (rho: float) (s: Solution) (d: Deployment) : string list =
        [ if s.ServedRate < s.DemandRate * 0.999 then
              yield sprintf "demand %.3f req/s exceeds what the cluster serves at rho %.2f: %.3f req/s (%.1f%% unserved)"
                        s.DemandRate rho s.ServedRate (100.0 * (1.0 - s.ServedRate / s.DemandRate))
          for st in s.UnfinishedStages do
              match st.StoppedBy with
              | "wall-clock cap" ->
                  yield sprintf "solver stage %s was stopped by the wall-clock cap (%s): this plan depends on the machine's speed and load; raise or drop max_wall_seconds"
                            st.Stage (st.Describe())
              | _ when st.HasSolution ->
                  yield sprintf "solver stage %s stopped at its work budget before proving its optimum (gap %.2f%%): raise max_solve_seconds for a better plan"
                            st.Stage (100.0 * st.Gap)
              | _ -> yield sprintf "solver stage %s found nothing better within its budget; the plan is the previous stage's (%s)" st.Stage (st.Describe())
          for j in 0 .. s.Problem.Types.Length - 1 do
              let t = s.Problem.Types[j]
              if t.Rate > 0.0 && snd (routingWeights s.Problem d j) then
                  yield sprintf "type %s (%.3f req/s) got no capacity in this plan; its requests go to the replicas best suited to it" t.Name t.Rate ]

    let summary (req: PlanRequest) (kind: string) (types: TypeDemand[]) (s: Solution) (d: Deployment) (plan: Plan) (warnings: string list) (reason: string) =
        let sb = StringBuilder()
        let line (t: string) = sb.AppendLine t |> ignore
        line (sprintf "plan v%d (%s) for %s on %s, window %g s + %g s" plan.Version kind req.Model.Name req.Cluster.Name req.WindowStartS req.WindowS)
        let pct = if s.DemandRate > 0.0 then 100.0 * s.ServedRate / s.DemandRate else 100.0
        line (sprintf "solve: %s, served %.3f of %.3f req/s (%.1f%%), mean latency %.3f s, %.2f s"
                  s.Status s.ServedRate s.DemandRate pct (meanLatency s) s.WallSeconds)
        for st in s.Stages do line ("  stage " + st.Describe())
        if req.ContextNote <> "" then line ("context: " + req.ContextNote)
        let over = req.OverContextPerType
        let overHead, overCell = if over.Length = types.Length then sprintf " %9s" "over ctx", (fun j -> sprintf " %9d" over[j]) else "", (fun _ -> "")
        line (sprintf "%-12s %8s %8s %10s %10s%s" "type" "input" "output" "rate/s" "served/s" overHead)
        types |> Array.iteri (fun j t ->
            let served = s.Routed |> Array.sumBy (fun row -> row[j])
            line (sprintf "%-12s %8.0f %8.0f %10.3f %10.3f%s" t.Name t.InputTokens t.OutputTokens t.Rate served (overCell j)))
        line (sprintf "%-6s %-22s %-34s %6s  %s" "id" "config" "devices" "util" "routed req/s")
        d.Replicas |> Array.iteri (fun i r ->
            let devs = plan.Replicas[i].Devices |> String.concat ","
            let shown = if devs.Length > 34 then devs.Substring(0, 31) + "..." else devs
            let routed =
                d.RatePerReplica[i] |> Array.mapi (fun j v -> if v > 0.0 then sprintf "%s %.3f" types[j].Name v else "") |> Array.filter ((<>) "") |> String.concat ", "
            line (sprintf "%-6s %-22s %-34s %6.2f  %s" r.Id r.Config.Label shown (utilization s.Problem d i) routed))
        match plan.Switch with
        | null -> ()
        | sw ->
            let count k = sw.Steps |> Seq.filter (fun st -> st.Kind = k) |> Seq.length
            line (sprintf "switch from v%d: %d kept, %d started, %d stopped, %.2f GB moved, est %.2f s"
                      sw.FromVersion (count SwitchStepKind.Keep) (count SwitchStepKind.Start) (count SwitchStepKind.Stop) (float sw.TotalBytes / 1e9) sw.EstSeconds)
        if reason <> "" then line (sprintf "switch decision: %s" reason)
        for w in warnings do line (sprintf "warning: %s" w)
        sb.ToString()

    /// Why a solve serves nothing, named precisely: a type no configuration can serve, a solver
    /// stage that stopped before finding anything better, or the researcher constraints.
    let whyNothing (rho: float) (constraints: PlannerConstraint list) (s: Solution) : PlanError list =
        let p = s.Problem
        let types =
            [ for j in 0 .. p.Types.Length - 1 do
                  if p.Demand[j] > 0L && not (p.Candidates |> Array.exists (fun c -> p.Allowed c.Index j)) then
                      let best = p.Candidates |> Array.minBy (fun c -> c.Service[j].E2eSec)
                      let e = best.Service[j]
                      yield err (sprintf "types[%d]" j)
                              (sprintf "type %s (%.0f in / %.0f out) can be served by no configuration: best is %s with TTFT %.3f s, TPOT %.4f s, E2E %.2f s at rho %.2f (rate %.3f/s)"
                                   p.Types[j].Name p.Types[j].InputTokens p.Types[j].OutputTokens best.Config.Label e.TtftSec e.TpotSec e.E2eSec rho e.Rate) ]
        if not types.IsEmpty then types
        else
            let stages = s.Stages |> List.map (fun st -> st.Describe()) |> String.concat "; "
            match s.UnfinishedStages, constraints with
            | st :: _, _ when st.Stage = (List.head s.Stages).Stage ->
                [ err "" (sprintf "CP-SAT's best plan within its work budget serves nothing of %.3f req/s (%s): raise the planner's max_solve_seconds" s.DemandRate stages) ]
            | _, [] ->
                [ err "" (sprintf "no deployment serves any of %.3f req/s on this cluster (solver: %s)" s.DemandRate stages) ]
            | _, ks ->
                [ err "" (sprintf "with the constraints %s, no deployment serves any of %.3f req/s (solver: %s)"
                              (ks |> List.map (fun k -> "'" + k.Name + "'") |> String.concat ", ") s.DemandRate stages) ]
