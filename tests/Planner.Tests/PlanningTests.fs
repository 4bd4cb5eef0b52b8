module OServe.Planner.Tests.PlanningTests

open System.IO
open System.Collections.Generic
open Expecto
open OServe.Contracts
open OServe.Contracts.Yaml
open OServe.Planner.CostModel
open OServe.Planner.Solver
open OServe.Planner.Switching
open OServe.Planner.Baselines
open OServe.Planner.Planning
open OServe.Planner.Workload
open TestPaths

let paperCluster () = ContractYaml.ReadCluster(Path.Combine(repoRoot, "scenarios", "clusters", "paper-4x8-h100.yaml"))
let mixedCluster () = ContractYaml.ReadCluster(Path.Combine(repoRoot, "scenarios", "clusters", "mixed-h100-a100-l40s.yaml"))
let llama70b () = ContractYaml.ReadModelCard(Path.Combine(repoRoot, "Models", "Cards", "llama-2-70b.yaml"))

let spec name i o rate = RequestTypeSpec(Name = name, InputTokens = i, OutputTokens = o, RateRps = rate)

let convTypes rate =
    [| spec "short" 300.0 60.0 (0.4 * rate); spec "chat" 1000.0 250.0 (0.3 * rate)
       spec "long-in" 3000.0 40.0 (0.2 * rate); spec "long-out" 800.0 700.0 (0.1 * rate) |] :> IReadOnlyList<RequestTypeSpec>

let planOk (req: PlanRequest) =
    match Planning.plan req with
    | Ok o -> o
    | Error es -> failtestf "plan failed: %A" (es |> List.map string)

let validate (plan: Plan) cluster model =
    let errors = PlanChecks.Validate(plan, cluster, model)
    Expect.isEmpty (errors |> Seq.map string |> List.ofSeq) "Contracts validates the plan"

[<Tests>]
let tests =
    testList "Planning" [
        test "paper cluster, Llama-2-70B: a valid plan with a readable summary" {
            let cluster, model = paperCluster (), llama70b ()
            let o = planOk (PlanRequest(cluster, model, convTypes 12.0))
            validate o.Plan cluster model
            Expect.stringContains o.Summary "served" "summary"
            Expect.isGreaterThan o.Plan.Replicas.Count 0 "replicas"
            Expect.isTrue ((nonNull o.Plan.Predicted).ServedRps > 11.9) "serves the demand"
            // The plan survives a YAML round trip.
            let again = ContractYaml.ParsePlan(ContractYaml.Write o.Plan).Value
            Expect.equal again.Replicas.Count o.Plan.Replicas.Count "round trip"
            // Cold start loads every shard from storage.
            Expect.isTrue ((nonNull o.Plan.Switch).Steps |> Seq.forall (fun s -> s.Kind <> SwitchStepKind.CopyShard)) "no copies on a cold start"
        }
        test "replanning from the current plan under the same demand keeps it" {
            let cluster, model = paperCluster (), llama70b ()
            let first = planOk (PlanRequest(cluster, model, convTypes 12.0))
            let again = planOk (PlanRequest(cluster, model, convTypes 12.0, Current = first.Plan))
            validate again.Plan cluster model
            Expect.equal again.Plan.Version 2 "version"
            Expect.isTrue ((nonNull again.Plan.Switch).Steps |> Seq.forall (fun s -> s.Kind = SwitchStepKind.Keep)) again.SwitchReason
        }
        test "a shifted mix either switches with hot copies or keeps the plan and says why" {
            let cluster, model = paperCluster (), llama70b ()
            let first = planOk (PlanRequest(cluster, model, [| spec "short" 300.0 60.0 30.0 |]))
            let second = planOk (PlanRequest(cluster, model, [| spec "long" 3500.0 400.0 6.0 |], Current = first.Plan))
            validate second.Plan cluster model
            let sw = nonNull second.Plan.Switch
            if sw.Steps |> Seq.exists (fun s -> s.Kind = SwitchStepKind.Start) then
                Expect.isTrue (sw.Steps |> Seq.exists (fun s -> s.Kind = SwitchStepKind.CopyShard)) "hot copies, not storage"
                Expect.isFalse (sw.Steps |> Seq.exists (fun s -> s.Kind = SwitchStepKind.LoadShard)) "no cold load"
                Expect.isGreaterThan sw.EstSeconds 0.0 "takes time"
            else
                Expect.stringContains second.SwitchReason "keep the current plan" "a kept plan says why"
                Expect.isTrue (sw.Steps |> Seq.forall (fun s -> s.Kind = SwitchStepKind.Keep)) "nothing moves"
        }
        test "AlwaysSwitch returns the fresh solve, placed against the current plan, and leaves the choice to the caller" {
            let cluster, model = paperCluster (), llama70b ()
            let first = planOk (PlanRequest(cluster, model, convTypes 12.0))
            let kept = planOk (PlanRequest(cluster, model, convTypes 12.0, Current = first.Plan))
            let forced = planOk (PlanRequest(cluster, model, convTypes 12.0, Current = first.Plan, AlwaysSwitch = true))
            validate forced.Plan cluster model
            Expect.stringContains forced.SwitchReason "fresh plan requested" "says the caller decides"
            Expect.notEqual kept.SwitchReason forced.SwitchReason "the keep-or-switch test ran only without the flag"
            Expect.equal (nonNull forced.Plan.Switch).FromVersion first.Plan.Version "switch steps start from the current plan"
        }
        test "every declared type is routed, and weights sum to 1 where capacity allows" {
            let cluster, model = paperCluster (), llama70b ()
            // Rates that are not multiples of the rate unit (the rounding that gave 0.996), and a type forecast at 0.
            let types = [| spec "short" 300.0 60.0 4.37; spec "chat" 1000.0 250.0 2.913; spec "long-in" 3000.0 40.0 1.171; spec "idle" 800.0 700.0 0.0 |]
            let o = planOk (PlanRequest(cluster, model, types))
            validate o.Plan cluster model
            for t in types do
                let e = o.Plan.Routing |> Seq.find (fun e -> e.Type = t.Name)
                Expect.isNonEmpty e.Weights (sprintf "%s is routed" t.Name)
                Expect.floatClose { absolute = 1e-5; relative = 0.0 } (Seq.sum e.Weights.Values) 1.0 (sprintf "%s weights sum to 1" t.Name)
        }
        test "the summary and the plan file give every solver stage's status" {
            let cluster, model = paperCluster (), llama70b ()
            let o = planOk (PlanRequest(cluster, model, convTypes 12.0))
            let stages = nonNull (nonNull o.Plan.Predicted).Stages
            Expect.equal (stages |> Seq.map (fun s -> s.Name) |> List.ofSeq) [ "served"; "latency"; "spread" ] "cold start stages"
            for st in stages do Expect.stringContains o.Summary ("stage " + st.Name + ": ") "printed"
            let optimal = stages |> Seq.forall (fun st -> st.Status = SolveStageStatus.Optimal)
            Expect.equal ((nonNull o.Plan.Predicted).SolveStatus = "Optimal") optimal "Optimal only when every stage is"
        }
        test "the paper scenario (Azure conv trace or its synthetic fallback) gives a valid plan" {
            let path = Path.Combine(repoRoot, "scenarios", "llama2-70b-azure-conv.yaml")
            let scenario = ContractYaml.ReadScenario path
            let cluster = ContractYaml.ReadCluster(Path.Combine(repoRoot, "scenarios", scenario.Cluster))
            match WorkloadSource.load scenario.Workload (Path.GetDirectoryName path |> nonNull) with
            | Error es -> failtestf "%A" es
            | Ok trace ->
                let types = Planning.typesOfTrace trace scenario.Workload.NumTypes |> Result.defaultWith (fun es -> failtestf "%A" es)
                let req = PlanRequest(cluster, llama70b (), types, Slo = scenario.Slo)
                let o = planOk req
                validate o.Plan cluster (llama70b ())
                Expect.isGreaterThan (nonNull o.Plan.Predicted).ServedRps 0.0 "serves"
        }
        test "real Azure conv trace: typed, planned, validated" {
            let file = sharedFile "traces/azure2023/AzureLLMInferenceTrace_conv.csv"
            let trace = TraceReader.read file |> Result.defaultWith (fun es -> failtestf "%A" es)
            let types = Planning.typesOfTrace trace 4 |> Result.defaultWith (fun es -> failtestf "%A" es)
            Expect.floatClose { absolute = 0.3; relative = 0.0 } (types |> Array.sumBy (fun t -> t.RateRps)) 5.5 "about 5.5 req/s in all"
            let cluster = paperCluster ()
            let o = planOk (PlanRequest(cluster, llama70b (), types))
            validate o.Plan cluster (llama70b ())
        }
        test "mixed GPU cluster plan validates" {
            let cluster, model = mixedCluster (), llama70b ()
            let o = planOk (PlanRequest(cluster, model, convTypes 6.0))
            validate o.Plan cluster model
        }
        test "static and paper-heuristic planners produce valid plans that CP-SAT matches or beats" {
            let cluster, model = paperCluster (), llama70b ()
            let served kind =
                let req = PlanRequest(cluster, model, convTypes 60.0)
                req.Options <- PlannerOptions(Kind = kind)
                let o = planOk req
                validate o.Plan cluster model
                o.Solution.ServedRate
            let cp, st, ph = served PlannerKind.Cpsat, served PlannerKind.Static, served PlannerKind.PaperHeuristic
            Expect.isGreaterThanOrEqual (cp * 1.01) st "CP-SAT >= static"
            Expect.isGreaterThanOrEqual (cp * 1.01) ph "CP-SAT >= heuristic"
            Expect.isGreaterThan ph 0.0 "heuristic serves"
        }
        test "a model that fits nowhere is explained, not an empty plan" {
            let cluster = ContractYaml.ParseCluster("name: tiny\ngpu_types:\n  - {name: small, memory_gib: 16, tflops: 100, hbm_gbps: 500}\nnodes:\n  - {name: n0, gpu_type: small, gpus: 2, intra_link_gbps: 32}\ninter_node_link_gbps: 10\n").Value
            match Planning.plan (PlanRequest(cluster, llama70b (), convTypes 1.0)) with
            | Ok _ -> failtest "70B on 2 x 16 GiB"
            | Error es -> Expect.stringContains (string es.Head) "fits no replica configuration" "why"
        }
        test "an impossible SLO is explained per type" {
            let req = PlanRequest(paperCluster (), llama70b (), convTypes 1.0, Slo = Slo(TtftS = 0.0001))
            match Planning.plan req with
            | Ok _ -> failtest "TTFT 0.1 ms"
            | Error es -> Expect.stringContains (string es.Head) "can be served by no configuration" "why"
        }
        test "demand beyond the cluster is planned with a warning" {
            let o = planOk (PlanRequest(paperCluster (), llama70b (), convTypes 500.0))
            Expect.isNonEmpty o.Warnings "warning"
            Expect.stringContains o.Warnings[0] "exceeds what the cluster serves" "message"
        }
        test "bad request types are reported by field" {
            match Planning.plan (PlanRequest(paperCluster (), llama70b (), [| spec "x" 0.0 10.0 -1.0 |])) with
            | Ok _ -> failtest "must fail"
            | Error es ->
                let text = es |> List.map string |> String.concat "\n"
                Expect.stringContains text "request_types[0].input_tokens" "input"
                Expect.stringContains text "request_types[0].rate_rps" "rate"
        }
        test "a schedule over synthetic windows forecasts, plans and validates every window" {
            let cluster, model = paperCluster (), llama70b ()
            let trace = SyntheticWorkload.generate { SyntheticWorkload.defaults with DurationSec = 600.0 }
            let req = ScheduleRequest(cluster, model, trace, MaxWindows = 5, WindowS = 60.0)
            req.Options <- PlannerOptions(MaxSolveSeconds = 0.5)
            match Planning.planSchedule req with
            | Error es -> failtestf "%A" es
            | Ok s ->
                Expect.equal s.Schedule.Plans.Count 5 "windows"
                for p in s.Schedule.Plans do validate p cluster model
                Expect.equal (s.Schedule.Plans |> Seq.map (fun p -> p.Version) |> List.ofSeq) [ 1; 2; 3; 4; 5 ] "versions chain"
                Expect.stringContains s.Summary "switches" "summary"
        }
        test "forecast report on a synthetic trace" {
            let trace = SyntheticWorkload.generate { SyntheticWorkload.defaults with DurationSec = 1800.0 }
            match Forecasting.report trace 60.0 4 0 with
            | Error e -> failtest e
            | Ok r ->
                Expect.equal r.Rows.Length 4 "types"
                Expect.isTrue (System.Double.IsFinite r.Overall.SmoothingRrmse) "finite"
                Expect.stringContains r.Text "mov.avg" "table"
        }
    ]

[<Tests>]
let baselineAndSwitching =
    testList "Baselines and switching" [
        test "max-flow finds the known maximum" {
            // s=0 -> 1 (3), s -> 2 (2), 1 -> 2 (1), 1 -> t=3 (2), 2 -> t (3): max flow 5.
            let cap = Array2D.zeroCreate<float> 4 4
            cap[0, 1] <- 3.0; cap[0, 2] <- 2.0; cap[1, 2] <- 1.0; cap[1, 3] <- 2.0; cap[2, 3] <- 3.0
            let flow = PaperHeuristic.maxFlow cap 0 3
            Expect.floatClose Accuracy.high (flow[1, 3] + flow[2, 3]) 5.0 "value"
        }
        test "switch steps copy shards within the node first, and load from storage cold" {
            let k = CostCoefficients.defaults
            let m = Hardware.llama2_70b
            let c = Hardware.cluster [ (Hardware.node "n0" Hardware.h100 8 400e9); (Hardware.node "n1" Hardware.h100 8 400e9) ] 50e9
            let cfg tp = { Gpu = Hardware.h100; Tp = tp; Pp = 1; CrossNode = false }
            let current = [| { Id = "a"; Config = cfg 4; Devices = [| for i in 0 .. 3 -> 0, i |] } |]
            let target = [| current[0]; { Id = "b"; Config = cfg 4; Devices = [| for i in 4 .. 7 -> 0, i |] } |]
            let sw = SwitchPlanner.plan k m c 2e9 false 0.85 0.5 current target
            let copies = sw.Steps |> Array.filter (fun s -> s.Kind = StepKind.CopyShard)
            Expect.equal copies.Length 4 "one copy per new GPU"
            Expect.isTrue (copies |> Array.forall (fun s -> s.Source |> Option.exists (fun (n, _) -> n = 0))) "intra-node sources"
            Expect.isTrue (sw.Steps |> Array.exists (fun s -> s.Kind = StepKind.Keep && s.Replica = "a")) "a kept"
            let cold = SwitchPlanner.plan k m c 2e9 false 0.85 0.5 [||] target
            Expect.isTrue (cold.Steps |> Array.filter (fun s -> s.Kind <> StepKind.Start) |> Array.forall (fun s -> s.Kind = StepKind.LoadShard)) "storage"
            Expect.isGreaterThan cold.EstSeconds (10.0 * sw.EstSeconds) "cold load is much slower than NVLink"
        }
        test "a copy onto a GPU that still holds an old shard without headroom waits for that replica to stop" {
            let k = CostCoefficients.defaults
            let c = Hardware.cluster [ (Hardware.node "n0" Hardware.h100 8 400e9) ] 50e9
            let cfg tp = { Gpu = Hardware.h100; Tp = tp; Pp = 1; CrossNode = false }
            let current = [| { Id = "a"; Config = cfg 4; Devices = [| for i in 0 .. 3 -> 0, i |] } |]
            let target = [| { Id = "b"; Config = cfg 2; Devices = [| 0, 0; 0, 1 |] } |]
            let sw = SwitchPlanner.plan k Hardware.llama2_70b c 2e9 false 0.85 0.5 current target
            let index kind replica = sw.Steps |> Array.findIndex (fun s -> s.Kind = kind && s.Replica = replica)
            let firstCopy = sw.Steps |> Array.findIndex (fun s -> s.Kind = StepKind.CopyShard)
            Expect.isLessThan (index StepKind.Stop "a") firstCopy "35 GB old + 69 GB new > 85% of 80 GB: copy after stop"
            Expect.isLessThan firstCopy (index StepKind.Start "b") "start last"
            // Half of b's first shard already sits on GPU 0 (a's rank-0 slice): no bytes move for it.
            Expect.isTrue (sw.Steps |> Array.exists (fun s -> s.Kind = StepKind.CopyShard && s.Source = Some(0, 0) && s.Device = Some(0, 0) && s.Bytes = 0L)) "in place"
        }
        test "a switch pays only when its gain over the window beats the capacity lost" {
            let pays = SwitchPlanner.decide 60.0 0.05 0.1 0.005 (10.0, 1.0) (8.0, 1.0) 5.0 8.0
            Expect.isTrue pays.Pays "120 more requests vs 40 lost"
            let short = SwitchPlanner.decide 60.0 0.05 0.1 0.005 (10.0, 1.0) (9.8, 1.0) 30.0 9.8
            Expect.isFalse short.Pays "12 more vs 294 lost"
            let latency = SwitchPlanner.decide 60.0 0.05 0.1 0.005 (10.0, 0.8) (10.0, 1.0) 2.0 5.0
            Expect.isTrue latency.Pays "20% faster, short switch"
        }
        test "a switch that moves no bytes pays like any other: not into a slower plan, yes into a faster one" {
            let slower = SwitchPlanner.decide 1.0 0.05 0.1 0.03 (3.0, 0.326) (3.0, 0.263) 0.0 3.0
            Expect.isFalse slower.Pays "same served, 24% slower: keep"
            let fewer = SwitchPlanner.decide 60.0 0.05 0.1 0.005 (8.0, 0.5) (10.0, 1.0) 0.0 10.0
            Expect.isFalse fewer.Pays "serves less: keep"
            let faster = SwitchPlanner.decide 1.0 0.05 0.1 0.03 (3.0, 0.2) (3.0, 0.3) 0.0 3.0
            Expect.isTrue faster.Pays "same served, a third faster, nothing to copy"
            let more = SwitchPlanner.decide 60.0 0.05 0.1 0.005 (12.0, 1.0) (10.0, 1.0) 0.0 10.0
            Expect.isTrue more.Pays "serves more, nothing lost"
        }
        test "a served gain inside the tolerance is no gain: only the latency rule can justify the switch" {
            // 1% more served, a free switch: pays under the default 0.5%, not under a noisy forecast's 3%
            // when the new plan is slower.
            let strict = SwitchPlanner.decide 1.0 0.05 0.1 0.005 (1.01, 11.4) (1.00, 6.1) 0.002 1.0
            Expect.isTrue strict.Pays "1% more served beats 0.002 s of switching"
            let noisy = SwitchPlanner.decide 1.0 0.05 0.1 0.03 (1.01, 11.4) (1.00, 6.1) 0.002 1.0
            Expect.isFalse noisy.Pays "the same within 3%, and twice the latency"
            let burst = SwitchPlanner.decide 1.0 0.05 0.1 0.03 (25.7, 0.69) (24.4, 0.57) 0.002 24.4
            Expect.isTrue burst.Pays "5% more served is beyond 3%"
        }
        test "the served tolerance widens to the Poisson noise of the window's count" {
            // Off (sigmas 0), or for a window of minutes holding thousands of requests: as set.
            Expect.equal (SwitchPlanner.servedTolerance 0.03 0.0 0.5 7.46 7.05) 0.03 "off"
            Expect.floatClose Accuracy.medium (SwitchPlanner.servedTolerance 0.005 1.0 60.0 100.0 100.0) (sqrt (100.0 / 60.0) / 100.0) "100 req/s over a minute: 1.3%"
            Expect.equal (SwitchPlanner.servedTolerance 0.005 1.0 600.0 1000.0 1000.0) 0.005 "1000 req/s over 10 min: noise 0.13%, under 0.5%: as set"
            // The demo's half-second window with a clump of three long prompts (7.46 req/s forecast):
            // tp2 serves 5.64, 2 x tp1 7.05; 20% apart, inside one sigma (3.86 req/s, 55%).
            let tol = SwitchPlanner.servedTolerance 0.03 1.0 0.5 7.46 7.05
            Expect.floatClose Accuracy.medium tol (sqrt (7.46 / 0.5) / 7.05) "one sigma of the rate"
            let clump = SwitchPlanner.decide 0.5 0.15 0.1 tol (7.05, 0.531) (5.64, 0.339) 0.001 5.64
            Expect.isFalse clump.Pays "a 20% served gain within the noise, into a slower plan: keep"
            // The chat burst in a one-second window (75 req/s forecast): 60.9 -> 70.6 is beyond one sigma (8.7).
            let busy = SwitchPlanner.servedTolerance 0.03 1.0 1.0 75.15 70.63
            let burst = SwitchPlanner.decide 1.0 0.15 0.1 busy (70.63, 0.070) (60.86, 0.081) 0.001 60.86
            Expect.isTrue burst.Pays "the burst's gain stands above the noise"
        }
    ]
