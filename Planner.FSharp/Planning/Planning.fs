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


[<RequireQualifiedAccess>]
module Planning =
    let private err field message = { Field = field; Message = message }

    /// The solver's options for a request; `rules` are its built-in constraints on the cluster view.
    let internal options (req: PlanRequest) (rules: ConstraintRule list) =
        let o = req.Options
        { OServe.Planner.Solver.PlannerOptions.Default with
            Rho = o.Rho
            SolveBudget = o.MaxSolveSeconds
            MaxWallSeconds = (if o.MaxWallSeconds.HasValue then o.MaxWallSeconds.Value else 0.0)
            NumWorkers = req.NumWorkers
            Coefficients = req.Coefficients
            Service = (match req.ServiceModel with | null -> None | m -> Some m)
            ReloadFromStorage = (o.Switching = SwitchMode.Reload)
            SwitchServedTolerance = o.MinSwitchServedGain
            SwitchLatencyGain = o.MinSwitchLatencyGain
            SwitchGainSigmas = o.MinSwitchGainSigmas
            Constraints = List.ofArray req.Constraints
            // The scenario's planner.max_tp is the max_tp rule, so the heuristic and static baseline keep it too.
            Rules = (if o.MaxTp.HasValue then [ MaxTp o.MaxTp.Value ] else []) @ rules }

    let internal solveWith (kind: PlannerKind) options input =
        match kind with
        | PlannerKind.Static -> StaticBaseline.solve options input |> Result.map fst
        | PlannerKind.PaperHeuristic -> PaperHeuristic.solve options input
        | _ -> CpSatPlanner.solve options input

    /// Mean E2E latency estimate (s) over the routed traffic, each config at its own utilization.
    let meanLatency (s: Solution) = PlanOutput.meanLatency s

    /// Plans one window: solve (CP-SAT, static or the paper's heuristic), decide whether switching
    /// from the current plan pays, place replicas on GPUs, route, and derive switch steps.
    let plan (req: PlanRequest) : Result<PlanOutcome, PlanError list> =
        let mapped =
            ContractMapping.cluster req.Cluster
            |> Result.bind (fun spec -> ContractMapping.rules spec req.ConstraintSpecs |> Result.map (fun rules -> spec, rules))
        match mapped, ContractMapping.demands req.RequestTypes req.Slo with
        | Error e1, Error e2 -> Error(e1 @ e2)
        | Error e, _ | _, Error e -> Error e
        | Ok(spec, rules), Ok types ->
            let current =
                match req.Current with
                | null -> Ok [||]
                | p -> ContractMapping.placed spec p
            match current with
            | Error e -> Error e
            | Ok current ->
                let options = options req rules
                let pinned = ConstraintRule.pins options.Rules spec
                let input = { Cluster = spec; Model = ContractMapping.model req.Model; Types = types; Current = current }
                let kind = req.Options.Kind
                let kindName = match kind with | PlannerKind.Static -> "static" | PlannerKind.PaperHeuristic -> "paper-heuristic" | _ -> "cpsat"
                match solveWith kind options input with
                | Error es -> Error(es |> List.map (err ""))
                | Ok s when s.ServedRate <= 0.0 && s.DemandRate > 0.0 -> Error(PlanOutput.whyNothing options.Rho (options.Constraints @ ConstraintRule.toConstraints spec options.Rules) s)
                | Ok fresh ->
                    let place (s: Solution) =
                        Placement.place spec s.Problem s.Counts pinned current |> Result.map (Placement.route s.Problem s.Counts s.Routed)
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
                                match ConstraintRule.violations options.Rules spec fresh.Problem (CpSatPlanner.currentCounts fresh.Problem current) with
                                | broken :: _ -> Ok(fresh, d, sprintf "the current plan breaks a constraint (%s): switching" broken)
                                | [] ->
                                    let sw = switchOf d
                                    match CpSatPlanner.evaluate options input (fun p -> CpSatPlanner.currentCounts p current) with
                                    | Error _ -> Ok(fresh, d, "the current plan cannot be evaluated on this cluster: switching")
                                    | Ok cur ->
                                        let removed = current |> Array.filter (fun c -> not (d.Replicas |> Array.exists (fun r -> r.Id = c.Id && r.Devices = c.Devices)))
                                        let affected = cur.ServedRate * float removed.Length / float (max 1 current.Length)
                                        let tolerance =
                                            SwitchPlanner.servedTolerance options.SwitchServedTolerance options.SwitchGainSigmas req.WindowS fresh.DemandRate (max fresh.ServedRate cur.ServedRate)
                                        let verdict =
                                            SwitchPlanner.decide req.WindowS options.SwitchLatencyGain options.MaxSwitchFraction tolerance (fresh.ServedRate, meanLatency fresh) (cur.ServedRate, meanLatency cur) sw.EstSeconds affected
                                        if verdict.Pays then Ok(fresh, d, verdict.Reason)
                                        else place cur |> Result.map (fun dc -> cur, dc, verdict.Reason)
                        match chosen with
                        | Error e -> Error [ err "" e ]
                        | Ok(s, d, reason) ->
                            // A cold start is a switch from version 0 (nothing loaded): every shard from storage.
                            let fromVersion = match req.Current with | null -> 0 | p -> p.Version
                            let planOut = PlanOutput.toPlan req spec kindName types s d (switchOf d) fromVersion
                            let warnings = PlanOutput.warnings options.Rho s d
                            let text = PlanOutput.summary req kindName types s d planOut warnings reason
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

    /// Per type, as typesOfTrace fits them on `trace` (the context-limited trace), how many requests
    /// of `original` (the trace as read) exceeded the context: clipped ones typed by their clipped
    /// lengths, dropped ones by their own.
    let overContextPerType (trace: Trace) (numTypes: int) (original: Request[]) (context: ContextReport) : int[] =
        match RequestTyping.fit { TypingOptions.Default with NumTypes = numTypes } trace.Requests with
        | Error _ -> [||]
        | Ok types ->
            let counts = Array.zeroCreate types.Length
            original |> Array.iteri (fun i r ->
                if context.IsOver[i] then
                    let r = if context.Policy = OverContext.Clip then ContextLimit.clip context.MaxContextTokens r else r
                    let t = RequestTyping.classify types r.InputTokens r.OutputTokens
                    counts[t] <- counts[t] + 1)
            counts

    /// Window 0 is planned from its own observed rates (no history yet); window w >= 1 from the
    /// forecast (ForecastMethod.Auto) over windows 0..w-1. Each plan starts from the previous one, so switch
    /// steps and the keep-or-switch decision apply window to window.
    let planSchedule (req: ScheduleRequest) : Result<ScheduleOutcome, PlanError list> =
        match RequestTyping.fit { TypingOptions.Default with NumTypes = req.NumTypes } req.Trace.Requests with
        | Error e -> Error [ { Field = "workload"; Message = e } ]
        | Ok types ->
            let series = RequestTyping.rateSeries types req.WindowS req.Trace.Requests
            let total = series[0].Length
            let n = if req.MaxWindows > 0 then min req.MaxWindows total else total
            let fopts = { ForecastOptions.Default with SeasonLength = (if req.SeasonLength > 1 then Some req.SeasonLength else None); WindowSec = req.WindowS }
            let outcomes = List<PlanOutcome>()
            let mutable failure = None
            let mutable current: Plan | null = null
            let mutable w = 0
            while failure.IsNone && w < n do
                let rates =
                    series |> Array.map (fun s -> if w = 0 then s[0] else Forecaster.next fopts ForecastMethod.Auto s[0 .. w - 1])
                let specs = typeSpecs types (rates |> Array.map (fun (r: float) -> Math.Round(r, 6)))
                let pr = PlanRequest(req.Cluster, req.Model, (specs :> IReadOnlyList<RequestTypeSpec>))
                pr.Slo <- req.Slo
                pr.Options <- req.Options
                pr.Coefficients <- req.Coefficients
                pr.ServiceModel <- req.ServiceModel
                pr.Constraints <- req.Constraints
                pr.ConstraintSpecs <- req.ConstraintSpecs
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
                if req.ContextNote <> "" then sb.AppendLine("context: " + req.ContextNote) |> ignore
                sb.AppendLine(sprintf "%6s %10s %10s %10s %8s %8s %8s  %s" "window" "forecast" "actual" "served" "replicas" "switch" "solve s" "solve status (stages not finished)") |> ignore
                outcomes |> Seq.iteri (fun i o ->
                    let actual = series |> Array.sumBy (fun s -> s[i])
                    let sw = match o.Plan.Switch with | null -> "-" | p when switched o -> sprintf "%.1fs" p.EstSeconds | _ -> "-"
                    let unfinished = o.Solution.UnfinishedStages |> List.map (fun st -> sprintf "%s: %s" st.Stage st.StoppedBy)
                    let status = if unfinished.IsEmpty then o.Solution.Status else sprintf "%s (%s)" o.Solution.Status (String.Join(", ", unfinished))
                    sb.AppendLine(sprintf "%6d %10.3f %10.3f %10.3f %8d %8s %8.2f  %s" i o.Solution.DemandRate actual o.Solution.ServedRate o.Plan.Replicas.Count sw o.Solution.WallSeconds status) |> ignore)
                let numSwitches = outcomes |> Seq.filter switched |> Seq.length
                sb.AppendLine(sprintf "%d switches" numSwitches) |> ignore
                let schedule = PlanSchedule(Model = req.Model.Name, Cluster = req.Cluster.Name, WindowS = req.WindowS, Plans = (outcomes |> Seq.map (fun o -> o.Plan) |> Array.ofSeq :> IReadOnlyList<Plan>))
                Ok { Schedule = schedule; Summary = sb.ToString(); NumSwitches = numSwitches; Outcomes = outcomes.ToArray() }

/// The schedule entry under its first name (the simulator calls Scheduling.planSchedule).
[<RequireQualifiedAccess>]
module Scheduling =
    let planSchedule (req: ScheduleRequest) : Result<ScheduleOutcome, PlanError list> = Planning.planSchedule req
