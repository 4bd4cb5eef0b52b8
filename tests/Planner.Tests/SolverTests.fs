module OServe.Planner.Tests.SolverTests

open Expecto
open OServe.Planner.CostModel
open OServe.Planner.Solver

let h100Node (name: string) (gpus: int) = (Hardware.node name Hardware.h100 gpus 400e9)
let cluster (nodes: NodeSpec list) = Hardware.cluster nodes 50e9

let demand name i o rate = { Name = name; InputTokens = i; OutputTokens = o; Rate = rate; Slo = SloTarget.None }

let solveOk options input =
    match CpSatPlanner.solve options input with
    | Ok s -> s
    | Error es -> failtestf "solve failed: %A" es

/// Replica counts by (tp, pp) over all candidates.
let countsBy (s: Solution) =
    s.Problem.Candidates
    |> Array.filter (fun c -> s.Counts[c.Index] > 0)
    |> Array.map (fun c -> (c.Config.Tp, c.Config.Pp), s.Counts[c.Index])
    |> Array.groupBy fst
    |> Array.map (fun (k, xs) -> k, xs |> Array.sumBy snd)
    |> Map.ofArray

/// Max served rate units of a scaled problem by enumerating every replica count vector and every
/// integer routing (tiny instances only).
let bruteForceServed (p: ScaledProblem) =
    let nC, nJ = p.Candidates.Length, p.Types.Length
    let pairs = [| for c in 0 .. nC - 1 do for j in 0 .. nJ - 1 do if p.Allowed c j then yield c, j |]
    let mutable best = 0L
    let rec counts (c: int) (acc: int list) =
        if c = nC then
            let x = acc |> List.rev |> Array.ofList
            let fits = p.Groups |> Array.forall (fun g -> p.Candidates |> Array.sumBy (fun k -> if k.Group = g.Index then x[k.Index] * k.Config.Size else 0) <= g.NumGpus)
            if fits then
                let r = Array.zeroCreate<int64> pairs.Length
                let rec route (i: int) =
                    if i = pairs.Length then
                        let demandOk = Array.init nJ (fun j -> Array.fold2 (fun s (_, jj) v -> if jj = j then s + v else s) 0L pairs r) |> Array.forall2 (fun d s -> s <= d) p.Demand
                        let loadOk =
                            Array.init nC (fun c -> Array.fold2 (fun s (cc, j) v -> if cc = c then s + v * p.LoadWeight[c][j] else s) 0L pairs r)
                            |> Array.mapi (fun c l -> l <= p.LoadCapacity * int64 x[c]) |> Array.forall id
                        if demandOk && loadOk then
                            let served = Array.fold2 (fun s (_, j) v -> s + v * p.ServedWeight[j]) 0L pairs r
                            if served > best then best <- served
                    else
                        let _, j = pairs[i]
                        for v in 0L .. p.Demand[j] do
                            r[i] <- v
                            route (i + 1)
                        r[i] <- 0L
                route 0
        else
            for v in 0 .. int p.MaxCount[c] do counts (c + 1) (v :: acc)
    counts 0 []
    best

let smallInput rateFactor =
    let options = { PlannerOptions.Default with MaxPp = 1; RateResolution = 4 }
    let types0 = [| demand "short" 500.0 50.0 1.0; demand "long" 2000.0 400.0 1.0 |]
    let input0 = { Cluster = cluster [ h100Node "n0" 4 ]; Model = Hardware.llama2_7b; Types = types0; Current = [||] }
    // Equal rates per type, as a multiple of what one TP1 replica serves of the 50/50 mix, so
    // both types get the same integer resolution and capacity binds at large factors.
    let p0 = CpSatPlanner.prepare options input0 |> Result.defaultWith (fun e -> failtestf "%A" e)
    let tp1 = p0.Candidates |> Array.find (fun c -> c.Config.Tp = 1)
    let mixRate = 1.0 / (0.5 / tp1.Service[0].Rate + 0.5 / tp1.Service[1].Rate)
    let types = types0 |> Array.map (fun t -> { t with Rate = rateFactor * mixRate / 2.0 })
    options, { input0 with Types = types }

[<Tests>]
let tests =
    testList "Solver" [
        test "CP-SAT optimum equals brute-force enumeration on small cases" {
            for factor in [ 0.5; 2.0; 5.0 ] do
                let options, input = smallInput factor
                let s = solveOk options input
                let expected = bruteForceServed s.Problem
                Expect.equal (int64 (round (s.Objective / s.Problem.RateUnit))) expected (sprintf "served at demand factor %g" factor)
                Expect.equal s.Status "Optimal" "proved optimal"
                Expect.isGreaterThan expected 0L "something is served"
                if factor = 5.0 then Expect.isLessThan expected (Array.sum s.Problem.Demand) "capacity binds at 5x"
                Expect.isGreaterThan s.Problem.Demand[1] 0L "both types have demand units"
        }
        test "the weighted objective serves as much as the lexicographic one when served dominates" {
            let options, input = smallInput 5.0
            let lex = solveOk options input
            let weighted = solveOk { options with Objective = Weighted(1_000_000L, 1L, 1L) } input
            Expect.floatClose { absolute = 1e-9; relative = 1e-9 } weighted.ServedRate lex.ServedRate "served"
        }
        test "the solution respects node capacity and the utilization target" {
            let options, input = smallInput 5.0
            let s = solveOk options input
            let gpus = s.Problem.Candidates |> Array.sumBy (fun c -> s.Counts[c.Index] * c.Config.Size)
            Expect.isLessThanOrEqual gpus 4 "GPUs"
            for c in s.Problem.Candidates do
                let load = s.Routed[c.Index] |> Array.mapi (fun j v -> if v > 0.0 then v / c.Service[j].Rate else 0.0) |> Array.sum
                Expect.isLessThanOrEqual load (0.85 * float s.Counts[c.Index] + 1e-6) (sprintf "load of %s" c.Config.Label)
        }
        test "a current plan is kept when a switch buys nothing worth its cost" {
            let options, input = smallInput 0.5
            let loose = { options with LatencyTolerance = 100.0 }
            // Two TP2 replicas: at light load the calibrated cost model prefers four TP1 replicas
            // (TP2's per-GPU decode is less efficient), so a cold start picks another deployment.
            let current =
                [| for i in 0 .. 1 -> { Id = sprintf "r%d" i; Config = { Gpu = Hardware.h100; Tp = 2; Pp = 1; CrossNode = false }; Devices = [| 0, 2 * i; 0, 2 * i + 1 |] } |]
            let cold = solveOk { options with LatencyTolerance = 0.0 } input
            let strict = solveOk { options with LatencyTolerance = 0.0 } { input with Current = current }
            let kept = solveOk loose { input with Current = current }
            Expect.equal (countsBy kept) (Map [ (2, 1), 2 ]) "keeps 2 x TP2: the latency slack makes the switch not worth it"
            Expect.equal kept.SwitchCostSec 0.0 "no shard moves"
            Expect.notEqual (countsBy cold) (Map [ (2, 1), 2 ]) "cold start picks another deployment"
            Expect.equal (countsBy strict) (countsBy cold) "no slack: latency wins and the plan switches"
        }
        test "a current plan that cannot serve the demand is switched despite the cost" {
            let options, input = smallInput 5.0
            let current = [| { Id = "r0"; Config = { Gpu = Hardware.h100; Tp = 1; Pp = 1; CrossNode = false }; Devices = [| 0, 0 |] } |]
            let s = solveOk { options with LatencyTolerance = 100.0 } { input with Current = current }
            let gpus = s.Problem.Candidates |> Array.sumBy (fun c -> s.Counts[c.Index] * c.Config.Size)
            Expect.equal gpus 4 "uses the whole node"
        }
        test "no config holds replicas without routed load, and no used config's replica fits in the GPUs left" {
            // Light conv-like load on 4 x 8 H100: every GPU could go to the best config.
            let types =
                [| demand "t0" 29.0 157.0 0.1; demand "t1" 352.0 105.0 1.35; demand "t2" 1099.0 413.0 1.33; demand "t3" 2672.0 78.0 0.4 |]
            let input = { Cluster = cluster [ for i in 0 .. 3 -> h100Node (sprintf "n%d" i) 8 ]; Model = Hardware.llama2_70b; Types = types; Current = [||] }
            let s = solveOk PlannerOptions.Default input
            let usedConfigs = s.Problem.Candidates |> Array.filter (fun c -> s.Counts[c.Index] > 0)
            for c in usedConfigs do
                Expect.isGreaterThan (Array.sum s.Routed[c.Index]) 0.0 (sprintf "%s has %d replicas and no load" c.Config.Label s.Counts[c.Index])
            let free = 32 - (usedConfigs |> Array.sumBy (fun c -> s.Counts[c.Index] * c.Config.Size))
            let smallest = usedConfigs |> Array.map (fun c -> c.Config.Size) |> Array.min
            Expect.isLessThan free smallest (sprintf "%d GPUs idle while a %d-GPU replica of a used config fits: %A" free smallest (countsBy s))
        }
        test "a service model handed in replaces the analytic one" {
            let options, input = smallInput 0.5
            let analytic = AnalyticServiceModel(options.Coefficients) :> IServiceModel
            // Only TP2 serves: every other config reports rate 0.
            let onlyTp2 =
                { new IServiceModel with
                    member _.Estimate(m, c, l, mem, i, o, u) =
                        let e = analytic.Estimate(m, c, l, mem, i, o, u)
                        if c.Tp = 2 then e else { e with Rate = 0.0 } }
            let s = solveOk { options with Service = Some onlyTp2 } input
            Expect.isGreaterThan s.ServedRate 0.0 "serves"
            Expect.isTrue (countsBy s |> Map.forall (fun (tp, _) _ -> tp = 2)) (sprintf "only TP2 replicas: %A" (countsBy s))
        }
        test "max TP constraint" {
            let options, input = smallInput 5.0
            let s = solveOk { options with Constraints = [ Constraints.maxTp 1 ] } input
            Expect.isTrue (countsBy s |> Map.forall (fun (tp, _) _ -> tp <= 1)) (sprintf "%A" (countsBy s))
        }
        test "max parallelism constraint" {
            let options, input = smallInput 5.0
            let s = solveOk { options with Constraints = [ Constraints.maxParallelism 1 ] } input
            Expect.isTrue (countsBy s |> Map.forall (fun (tp, pp) _ -> tp <= 1 && pp <= 1)) (sprintf "%A" (countsBy s))
        }
        test "GPU budget constraint" {
            let options, input = smallInput 5.0
            let s = solveOk { options with Constraints = [ Constraints.gpuBudget 2 ] } input
            Expect.equal (countsBy s |> Seq.sumBy (fun kv -> fst kv.Key * snd kv.Key * kv.Value)) 2 "2 GPUs"
        }
        test "min GPUs in use: a plan with a GPU budget below it is infeasible, one at it uses that many" {
            let options, input = smallInput 5.0
            let gpus (s: Solution) = countsBy s |> Seq.sumBy (fun kv -> fst kv.Key * snd kv.Key * kv.Value)
            let s = solveOk { options with Constraints = [ Constraints.gpuBudget 4; Constraints.minGpusInUse 4 ] } input
            Expect.equal (gpus s) 4 "exactly 4 GPUs"
            match CpSatPlanner.solve { options with Constraints = [ Constraints.gpuBudget 2; Constraints.minGpusInUse 4 ] } input with
            | Ok s -> failtestf "2 GPUs at most and 4 at least cannot both hold, got %A" (countsBy s)
            | Error _ -> ()
            let total = input.Cluster.Nodes |> Array.sumBy (fun n -> n.NumGpus)
            match CpSatPlanner.solve { options with Constraints = [ Constraints.minGpusInUse (total + 1) ] } input with
            | Ok _ -> failtest "more GPUs than the cluster has"
            | Error es -> Expect.isTrue (es |> List.exists (fun e -> string e |> fun t -> t.Contains "min-gpus-in-use")) (sprintf "names the constraint: %A" es)
        }
        test "reserved GPUs stay free on their node" {
            let options, input = smallInput 5.0
            let two = { input with Cluster = cluster [ h100Node "n0" 4; h100Node "n1" 4 ] }
            let s = solveOk { options with Constraints = [ Constraints.reservedGpus 1 3 ] } two
            let g1 = s.Problem.Groups |> Array.find (fun g -> g.Nodes = [| 1 |])
            let used = s.Problem.Candidates |> Array.sumBy (fun c -> if c.Group = g1.Index then s.Counts[c.Index] * c.Config.Size else 0)
            Expect.isLessThanOrEqual used 1 "node n1 keeps 3 GPUs free"
        }
        test "pinned replica is placed even when the optimum would not choose it" {
            let options, input = smallInput 5.0
            let two = { input with Cluster = cluster [ h100Node "n0" 4; h100Node "n1" 4 ] }
            let s = solveOk { options with Constraints = [ Constraints.pinnedReplica 1 4 1 ] } two
            let onN1 = s.Problem.Candidates |> Array.exists (fun c -> s.Problem.Groups[c.Group].Nodes = [| 1 |] && c.Config.Tp = 4 && s.Counts[c.Index] >= 1)
            Expect.isTrue onN1 "a TP4 replica on n1"
        }
        test "a constraint that cannot apply explains why" {
            let options, input = smallInput 1.0
            match CpSatPlanner.solve { options with Constraints = [ Constraints.pinnedReplica 0 8 1 ] } input with
            | Ok _ -> failtest "TP8 on a 4-GPU node"
            | Error es -> Expect.stringContains (String.concat "\n" es) "no feasible tp8/pp1 replica fits on node n0" "message"
        }
        test "a model that fits no configuration is explained" {
            let l40 = (Hardware.node "l" Hardware.l40s 1 32e9)
            let input = { Cluster = cluster [ l40 ]; Model = Hardware.llama2_70b; Types = [| demand "a" 100.0 10.0 1.0 |]; Current = [||] }
            match CpSatPlanner.solve PlannerOptions.Default input with
            | Ok _ -> failtest "70B on one L40S"
            | Error es -> Expect.stringContains es.Head "fits no replica configuration" "message"
        }
        test "mixed GPU types and cross-node pipelines are planned" {
            let a100 = (Hardware.node "a" Hardware.a100 8 300e9)
            let c = cluster [ h100Node "h0" 8; h100Node "h1" 8; a100; { a100 with Name = "a1" } ]
            let input = { Cluster = c; Model = Hardware.llama2_70b; Types = [| demand "chat" 1000.0 200.0 20.0; demand "code" 2000.0 20.0 10.0 |]; Current = [||] }
            let s = solveOk PlannerOptions.Default input
            Expect.equal s.Problem.Groups.Length 2 "two groups (H100 and A100)"
            Expect.isTrue (s.Problem.Candidates |> Array.exists (fun c -> c.Config.CrossNode)) "cross-node candidates exist"
            Expect.isGreaterThan s.ServedRate 0.0 "serves"
        }
    ]
