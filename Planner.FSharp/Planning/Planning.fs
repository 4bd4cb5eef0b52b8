namespace OServe.Planner.Planning

open System
open System.Collections.Generic
open System.Text
open OServe.Contracts
open OServe.Planner.CostModel
open OServe.Planner.Solver
open OServe.Planner.Switching
open OServe.Planner.Baselines
open OServe.Planner.Workload
open OServe.Planner.Forecast

/// Everything `oserve plan` needs; settable properties so C# can use an object initializer.
type PlanRequest(cluster: Cluster, model: ModelCard, requestTypes: IReadOnlyList<RequestTypeSpec>) =
    member _.Cluster = cluster
    member _.Model = model
    /// Types with their forecast rates for the window.
    member _.RequestTypes = requestTypes
    member val Slo = Slo() with get, set
    member val Options = OServe.Contracts.PlannerOptions() with get, set
    /// The plan now running, or null for a cold start.
    member val Current: Plan | null = null with get, set
    member val WindowStartS = 0.0 with get, set
    member val WindowS = 60.0 with get, set
    member val Coefficients = CostCoefficients.defaults with get, set
    /// Measured rates and latencies per (config, type); null: the analytic model of Coefficients.
    member val ServiceModel: IServiceModel | null = null with get, set
    member val Constraints: PlannerConstraint[] = [||] with get, set
    member val NumWorkers = 2 with get, set
    /// Skip the keep-or-switch test and return the fresh solve placed against Current: for callers
    /// that rank candidate plans themselves (the simulator's plan verification).
    member val AlwaysSwitch = false with get, set

type PlanOutcome =
    { Plan: Plan
      /// A readable table of the plan (print it as is).
      Summary: string
      Warnings: string[]
      /// Why the planner switched or kept the current plan; empty without a current plan.
      SwitchReason: string
      Solution: Solution
      Deployment: Deployment }

/// `oserve plan --schedule`: every window of a trace is forecast, planned and switched in turn.
type ScheduleRequest(cluster: Cluster, model: ModelCard, trace: OServe.Planner.Workload.Trace) =
    member _.Cluster = cluster
    member _.Model = model
    member _.Trace = trace
    member val NumTypes = 4 with get, set
    member val WindowS = 60.0 with get, set
    /// Windows per season for Holt-Winters; 0 for Holt only.
    member val SeasonLength = 0 with get, set
    /// Plan at most this many windows (0 = all).
    member val MaxWindows = 0 with get, set
    member val Slo = Slo() with get, set
    member val Options = OServe.Contracts.PlannerOptions() with get, set
    member val Coefficients = CostCoefficients.defaults with get, set
    /// Measured rates and latencies per (config, type); null: the analytic model of Coefficients.
    member val ServiceModel: IServiceModel | null = null with get, set
    member val Constraints: PlannerConstraint[] = [||] with get, set
    member val NumWorkers = 2 with get, set

type ScheduleOutcome =
    { Schedule: PlanSchedule
      Summary: string
      NumSwitches: int
      Outcomes: PlanOutcome[] }

[<RequireQualifiedAccess>]
module Planning =
    let private err field message = { Field = field; Message = message }

    let internal options (req: PlanRequest) =
        let o = req.Options
        { OServe.Planner.Solver.PlannerOptions.Default with
            Rho = o.Rho
            MaxSolveSeconds = o.MaxSolveSeconds
            NumWorkers = req.NumWorkers
            Coefficients = req.Coefficients
            Service = (match req.ServiceModel with | null -> None | m -> Some m)
            ReloadFromStorage = (o.Switching = SwitchMode.Reload)
            Constraints = (if o.MaxTp.HasValue then [ Constraints.maxTp o.MaxTp.Value ] else []) @ List.ofArray req.Constraints }

    let internal solveWith (kind: PlannerKind) options input =
        match kind with
        | PlannerKind.Static -> StaticBaseline.solve options input |> Result.map fst
        | PlannerKind.PaperHeuristic -> PaperHeuristic.solve options input
        | _ -> CpSatPlanner.solve options input

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

    let private utilization (p: ScaledProblem) (d: Deployment) (i: int) =
        let r = d.Replicas[i]
        let n = fst r.Devices[0]
        match p.Candidates |> Array.tryFind (fun c -> Array.contains n p.Groups[c.Group].Nodes && c.Config.Tp = r.Config.Tp && c.Config.Pp = r.Config.Pp && c.Config.Gpu.Name = r.Config.Gpu.Name) with
        | Some c -> d.RatePerReplica[i] |> Array.mapi (fun j v -> if v > 0.0 then v / c.Service[j].Rate else 0.0) |> Array.sum
        | None -> 0.0

    let private stepKind (k: StepKind) =
        match k with
        | StepKind.Keep -> SwitchStepKind.Keep
        | StepKind.Drain -> SwitchStepKind.Drain
        | StepKind.MoveKv -> SwitchStepKind.MoveKv
        | StepKind.CopyShard -> SwitchStepKind.CopyShard
        | StepKind.LoadShard -> SwitchStepKind.LoadShard
        | StepKind.Stop -> SwitchStepKind.Stop
        | _ -> SwitchStepKind.Start

    let private toPlan (req: PlanRequest) (spec: ClusterSpec) (kind: string) (types: TypeDemand[]) (s: Solution) (d: Deployment)
                       (switch: SwitchSchedule) (fromVersion: int) : Plan =
        let dev = ContractMapping.deviceText spec
        let replicas =
            d.Replicas |> Array.map (fun r ->
                ReplicaSpec(Id = r.Id, GpuType = r.Config.Gpu.Name, Devices = (r.Devices |> Array.map dev :> IReadOnlyList<string>),
                            Tp = r.Config.Tp, Pp = r.Config.Pp, MaxNumSeqs = req.Coefficients.MaxNumSeqs))
        let routing =
            types |> Array.mapi (fun j t ->
                let w = Dictionary<string, float>()
                d.Replicas |> Array.iteri (fun i r -> if d.RatePerReplica[i][j] > 0.0 && t.Rate > 0.0 then w[r.Id] <- Math.Round(d.RatePerReplica[i][j] / t.Rate, 6))
                RoutingEntry(Type = t.Name, Weights = (w :> IReadOnlyDictionary<string, float>)))
        let maxUtil = if d.Replicas.Length = 0 then 0.0 else Array.init d.Replicas.Length (utilization s.Problem d) |> Array.max
        let switchPlan =
                let sw, v = switch, fromVersion
                let steps =
                    sw.Steps |> Array.map (fun st ->
                        SwitchStep(Kind = stepKind st.Kind, Replica = st.Replica, Device = (st.Device |> Option.map dev |> Option.toObj),
                                   Source = (match st.Kind, st.Source with
                                             | StepKind.LoadShard, _ -> "storage"
                                             | _, Some src -> dev src
                                             | _, None -> null),
                                   Bytes = st.Bytes, EstSeconds = Math.Round(st.EstSeconds, 4)))
                SwitchPlan(FromVersion = v, Steps = (steps :> IReadOnlyList<SwitchStep>), TotalBytes = sw.TotalBytes, EstSeconds = Math.Round(sw.EstSeconds, 4))
        let finite v = if Double.IsFinite v then Nullable(Math.Round(v, 6)) else Nullable()
        Plan(Version = fromVersion + 1, Model = req.Model.Name, Cluster = req.Cluster.Name, Planner = kind,
             Window = PlanWindow(StartS = req.WindowStartS, LengthS = req.WindowS),
             RequestTypes = (types |> Array.map (fun t -> RequestTypeSpec(Name = t.Name, InputTokens = Math.Round(t.InputTokens, 1), OutputTokens = Math.Round(t.OutputTokens, 1), RateRps = Math.Round(t.Rate, 6))) :> IReadOnlyList<RequestTypeSpec>),
             Replicas = (replicas :> IReadOnlyList<ReplicaSpec>),
             Routing = (routing :> IReadOnlyList<RoutingEntry>),
             Predicted = PredictedFigures(DemandRps = Math.Round(s.DemandRate, 6), ServedRps = Math.Round(s.ServedRate, 6), MaxUtilization = Math.Round(maxUtil, 4),
                                          MeanLatencyS = finite (meanLatency s), SolveStatus = s.Status, Objective = finite s.Objective,
                                          Bound = finite s.Bound, Gap = finite s.Gap, SolveSeconds = finite s.WallSeconds),
             Switch = switchPlan)

    let private summary (req: PlanRequest) (kind: string) (types: TypeDemand[]) (s: Solution) (d: Deployment) (plan: Plan) (warnings: string list) (reason: string) =
        let sb = StringBuilder()
        let line (t: string) = sb.AppendLine t |> ignore
        line (sprintf "plan v%d (%s) for %s on %s, window %g s + %g s" plan.Version kind req.Model.Name req.Cluster.Name req.WindowStartS req.WindowS)
        let pct = if s.DemandRate > 0.0 then 100.0 * s.ServedRate / s.DemandRate else 100.0
        line (sprintf "solve: %s, served %.3f of %.3f req/s (%.1f%%), mean latency %.3f s, objective %.3f, bound %.3f, gap %.2f%%, %.2f s"
                  s.Status s.ServedRate s.DemandRate pct (meanLatency s) s.Objective s.Bound (100.0 * s.Gap) s.WallSeconds)
        line (sprintf "%-12s %8s %8s %10s %10s" "type" "input" "output" "rate/s" "served/s")
        types |> Array.iteri (fun j t ->
            let served = s.Routed |> Array.sumBy (fun row -> row[j])
            line (sprintf "%-12s %8.0f %8.0f %10.3f %10.3f" t.Name t.InputTokens t.OutputTokens t.Rate served))
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

    /// Explains why nothing can be served (SLO too tight, requests longer than any KV cache).
    let private whyNothing (s: Solution) =
        let p = s.Problem
        [ for j in 0 .. p.Types.Length - 1 do
              if p.Demand[j] > 0L && not (p.Candidates |> Array.exists (fun c -> p.Allowed c.Index j)) then
                  let best = p.Candidates |> Array.minBy (fun c -> c.Service[j].E2eSec)
                  let e = best.Service[j]
                  yield err (sprintf "types[%d]" j)
                          (sprintf "type %s (%.0f in / %.0f out) can be served by no configuration: best is %s with TTFT %.3f s, TPOT %.4f s, E2E %.2f s at rho %.2f (rate %.3f/s)"
                               p.Types[j].Name p.Types[j].InputTokens p.Types[j].OutputTokens best.Config.Label e.TtftSec e.TpotSec e.E2eSec 0.0 e.Rate) ]

    /// Plans one window: solve (CP-SAT, static or the paper's heuristic), decide whether switching
    /// from the current plan pays, place replicas on GPUs, route, and derive switch steps.
    let plan (req: PlanRequest) : Result<PlanOutcome, PlanError list> =
        match ContractMapping.cluster req.Cluster, ContractMapping.demands req.RequestTypes req.Slo with
        | Error e1, Error e2 -> Error(e1 @ e2)
        | Error e, _ | _, Error e -> Error e
        | Ok spec, Ok types ->
            let current =
                match req.Current with
                | null -> Ok [||]
                | p -> ContractMapping.placed spec p
            match current with
            | Error e -> Error e
            | Ok current ->
                let options = options req
                let input = { Cluster = spec; Model = ContractMapping.model req.Model; Types = types; Current = current }
                let kind = req.Options.Kind
                let kindName = match kind with | PlannerKind.Static -> "static" | PlannerKind.PaperHeuristic -> "paper-heuristic" | _ -> "cpsat"
                match solveWith kind options input with
                | Error es -> Error(es |> List.map (err ""))
                | Ok s when s.ServedRate <= 0.0 && s.DemandRate > 0.0 ->
                    match whyNothing s with
                    | [] -> Error [ err "" (sprintf "the plan would serve nothing of %.3f req/s (constraints leave no usable GPU?)" s.DemandRate) ]
                    | es -> Error es
                | Ok fresh ->
                    let place (s: Solution) =
                        Placement.place spec s.Problem s.Counts current |> Result.map (Placement.route s.Problem s.Counts s.Routed)
                    let longShare =
                        let total = types |> Array.sumBy (fun t -> t.Rate)
                        if total <= 0.0 then 0.0
                        else (types |> Array.filter (fun t -> t.OutputTokens > float req.Coefficients.DrainMaxRemainingTokens) |> Array.sumBy (fun t -> t.Rate)) / total
                    let storage = req.Cluster.StorageReadGbps * 1e9
                    let switchOf (d: Deployment) =
                        SwitchPlanner.plan req.Coefficients input.Model spec storage options.ReloadFromStorage options.Rho longShare current d.Replicas
                    match place fresh with
                    | Error e -> Error [ err "" e ]
                    | Ok d ->
                        // With a current plan, keep it (re-routed) unless the switch pays over the window.
                        let chosen =
                            if current.Length = 0 then Ok(fresh, d, "")
                            elif req.AlwaysSwitch then Ok(fresh, d, "fresh plan requested (the caller decides whether to switch)")
                            else
                                let sw = switchOf d
                                match CpSatPlanner.evaluate options input (fun p -> CpSatPlanner.currentCounts p current) with
                                | Error _ -> Ok(fresh, d, "the current plan cannot be evaluated on this cluster: switching")
                                | Ok cur ->
                                    let removed = current |> Array.filter (fun c -> not (d.Replicas |> Array.exists (fun r -> r.Id = c.Id && r.Devices = c.Devices)))
                                    let affected = cur.ServedRate * float removed.Length / float (max 1 current.Length)
                                    let verdict =
                                        SwitchPlanner.decide req.WindowS options.SwitchLatencyGain options.MaxSwitchFraction (fresh.ServedRate, meanLatency fresh) (cur.ServedRate, meanLatency cur) sw.EstSeconds affected
                                    if verdict.Pays then Ok(fresh, d, verdict.Reason)
                                    else place cur |> Result.map (fun dc -> cur, dc, verdict.Reason)
                        match chosen with
                        | Error e -> Error [ err "" e ]
                        | Ok(s, d, reason) ->
                            // A cold start is a switch from version 0 (nothing loaded): every shard from storage.
                            let fromVersion = match req.Current with | null -> 0 | p -> p.Version
                            let planOut = toPlan req spec kindName types s d (switchOf d) fromVersion
                            let warnings =
                                [ if s.ServedRate < s.DemandRate * 0.999 then
                                      yield sprintf "demand %.3f req/s exceeds what the cluster serves at rho %.2f: %.3f req/s (%.1f%% unserved)"
                                                s.DemandRate options.Rho s.ServedRate (100.0 * (1.0 - s.ServedRate / s.DemandRate))
                                  if s.Status = "Feasible" then yield sprintf "the solve hit its time limit: gap %.2f%%" (100.0 * s.Gap) ]
                            let text = summary req kindName types s d planOut warnings reason
                            Ok { Plan = planOut; Summary = text; Warnings = Array.ofList warnings; SwitchReason = reason; Solution = s; Deployment = d }

    let internal typeSpecs (types: OServe.Planner.Workload.RequestType[]) (rates: float[]) =
        types |> Array.mapi (fun j t ->
            RequestTypeSpec(Name = sprintf "t%d" t.Id, InputTokens = Math.Round(t.MeanInputTokens, 1), OutputTokens = Math.Round(t.MeanOutputTokens, 1), RateRps = rates[j]))

    /// Types a trace and gives each type its mean rate over the trace (for a single plan of a trace).
    let typesOfTrace (trace: OServe.Planner.Workload.Trace) (numTypes: int) : Result<RequestTypeSpec[], PlanError list> =
        OServe.Planner.Workload.RequestTyping.fit { OServe.Planner.Workload.TypingOptions.Default with NumTypes = numTypes } trace.Requests
        |> Result.mapError (fun e -> [ err "workload" e ])
        |> Result.map (fun types ->
            let duration = max 1.0 trace.DurationSec
            let rates =
                types |> Array.map (fun t ->
                    let n = trace.Requests |> Array.filter (fun r -> OServe.Planner.Workload.RequestTyping.classify types r.InputTokens r.OutputTokens = t.Id) |> Array.length
                    float n / duration)
            typeSpecs types rates)

    /// Window 0 is planned from its own observed rates (no history yet); window w >= 1 from the
    /// smoothing forecast over windows 0..w-1. Each plan starts from the previous one, so switch
    /// steps and the keep-or-switch decision apply window to window.
    let planSchedule (req: ScheduleRequest) : Result<ScheduleOutcome, PlanError list> =
        match RequestTyping.fit { TypingOptions.Default with NumTypes = req.NumTypes } req.Trace.Requests with
        | Error e -> Error [ { Field = "workload"; Message = e } ]
        | Ok types ->
            let series = RequestTyping.rateSeries types req.WindowS req.Trace.Requests
            let total = series[0].Length
            let n = if req.MaxWindows > 0 then min req.MaxWindows total else total
            let fopts = { ForecastOptions.Default with SeasonLength = (if req.SeasonLength > 1 then Some req.SeasonLength else None) }
            let outcomes = List<PlanOutcome>()
            let mutable failure = None
            let mutable current: Plan | null = null
            let mutable w = 0
            while failure.IsNone && w < n do
                let rates =
                    series |> Array.map (fun s -> if w = 0 then s[0] else Forecaster.next fopts ForecastMethod.Smoothing s[0 .. w - 1])
                let specs = typeSpecs types (rates |> Array.map (fun (r: float) -> Math.Round(r, 6)))
                let pr = PlanRequest(req.Cluster, req.Model, (specs :> IReadOnlyList<RequestTypeSpec>))
                pr.Slo <- req.Slo
                pr.Options <- req.Options
                pr.Coefficients <- req.Coefficients
                pr.ServiceModel <- req.ServiceModel
                pr.Constraints <- req.Constraints
                pr.NumWorkers <- req.NumWorkers
                pr.Current <- current
                pr.WindowStartS <- float w * req.WindowS
                pr.WindowS <- req.WindowS
                match plan pr with
                | Error es -> failure <- Some(es |> List.map (fun e -> { e with Message = sprintf "window %d: %s" w e.Message }))
                | Ok o ->
                    outcomes.Add o
                    current <- o.Plan
                w <- w + 1
            match failure with
            | Some es -> Error es
            | None ->
                let switched (o: PlanOutcome) =
                    match o.Plan.Switch with
                    | null -> false
                    | sw -> sw.FromVersion > 0 && sw.Steps |> Seq.exists (fun st -> st.Kind = SwitchStepKind.Start)
                let sb = StringBuilder()
                sb.AppendLine(sprintf "schedule for %s on %s: %d windows of %g s, %d types" req.Model.Name req.Cluster.Name n req.WindowS types.Length) |> ignore
                sb.AppendLine(sprintf "%6s %10s %10s %10s %8s %8s %8s" "window" "forecast" "actual" "served" "replicas" "switch" "solve s") |> ignore
                outcomes |> Seq.iteri (fun i o ->
                    let actual = series |> Array.sumBy (fun s -> s[i])
                    let sw = match o.Plan.Switch with | null -> "-" | p when switched o -> sprintf "%.1fs" p.EstSeconds | _ -> "-"
                    sb.AppendLine(sprintf "%6d %10.3f %10.3f %10.3f %8d %8s %8.2f" i o.Solution.DemandRate actual o.Solution.ServedRate o.Plan.Replicas.Count sw o.Solution.WallSeconds) |> ignore)
                let numSwitches = outcomes |> Seq.filter switched |> Seq.length
                sb.AppendLine(sprintf "%d switches" numSwitches) |> ignore
                let schedule = PlanSchedule(Model = req.Model.Name, Cluster = req.Cluster.Name, WindowS = req.WindowS, Plans = (outcomes |> Seq.map (fun o -> o.Plan) |> Array.ofSeq :> IReadOnlyList<Plan>))
                Ok { Schedule = schedule; Summary = sb.ToString(); NumSwitches = numSwitches; Outcomes = outcomes.ToArray() }

/// The schedule entry under its first name (the simulator calls Scheduling.planSchedule).
[<RequireQualifiedAccess>]
module Scheduling =
    let planSchedule (req: ScheduleRequest) : Result<ScheduleOutcome, PlanError list> = Planning.planSchedule req
