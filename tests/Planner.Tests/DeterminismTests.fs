module OServe.Planner.Tests.DeterminismTests

open System.Threading
open Expecto
open OServe.Contracts
open OServe.Contracts.Yaml
open OServe.Planner
open OServe.Planner.CostModel
open OServe.Planner.Solver
open OServe.Planner.Planning

/// The first `numNodes` nodes of the benchmark's unpooled cluster (no two nodes alike).
let unpooled (numNodes: int) (totalRps: float) =
    { Cluster = { PlannerBenchmark.unpooledCluster with Nodes = PlannerBenchmark.unpooledCluster.Nodes[0 .. numNodes - 1] }
      Model = PlannerBenchmark.llama3_8b
      Types = PlannerBenchmark.demands totalRps
      Current = [||] }

let private solveOk options input =
    match CpSatPlanner.solve options input with
    | Ok s -> s
    | Error es -> failtestf "solve failed: %A" es

/// Runs `f` while two threads spin on the CPU beside it (what a loaded machine does to wall time).
let private whileBusy (f: unit -> 'T) : 'T =
    use stop = new CancellationTokenSource()
    let spin () =
        let mutable x = 0.0
        while not stop.IsCancellationRequested do
            for i in 1 .. 10000 do x <- x + sqrt (float i)
    let threads = Array.init 2 (fun _ -> Thread(spin, IsBackground = true))
    for t in threads do t.Start()
    try f ()
    finally
        stop.Cancel()
        for t in threads do t.Join()

/// What must not change from run to run: the deployment, the routing, and each stage's status,
/// objective and deterministic time (wall seconds may).
let private fingerprint (s: Solution) =
    s.Counts, s.Routed, s.Stages |> List.map (fun st -> st.Stage, st.Status, st.Objective, st.Bound, st.DeterministicTime)

[<Tests>]
let tests =
    testList "Determinism and model size" [
        test "the same inputs give the same plan twice, and with busy threads beside the solve" {
            // Small enough a budget that the latency stage stops at its work budget: the case where
            // wall-clock limits made the answer depend on the machine's load.
            let options = { PlannerOptions.Default with SolveBudget = 0.1 }
            let input = unpooled 12 240.0
            let first = solveOk options input
            Expect.isTrue (first.Stages |> List.exists (fun st -> st.StoppedBy = "work budget"))
                (sprintf "some stage stops at its work budget: %A" (first.Stages |> List.map (fun st -> st.Describe())))
            let second = solveOk options input
            let busy = whileBusy (fun () -> solveOk options input)
            Expect.equal (fingerprint second) (fingerprint first) "second run"
            Expect.equal (fingerprint busy) (fingerprint first) "run beside busy threads"
        }
        test "interleaved search with two workers is deterministic too, down to the plan file" {
            let cluster = ContractYaml.ReadCluster(System.IO.Path.Combine(TestPaths.repoRoot, "scenarios", "clusters", "mixed-h100-a100-l40s.yaml"))
            let model = ContractYaml.ReadModelCard(System.IO.Path.Combine(TestPaths.repoRoot, "Models", "Cards", "llama-2-13b.yaml"))
            let plan () =
                let req = PlanRequest(cluster, model, PlanningTests.convTypes 40.0, NumWorkers = 2)
                req.Options <- PlannerOptions(MaxSolveSeconds = 0.2)
                match Planning.plan req with
                | Ok o -> o.Plan
                | Error es -> failtestf "%A" es
            // Wall seconds are the only figures allowed to differ.
            let text (p: Plan) =
                ContractYaml.Write p
                |> fun yaml -> yaml.Split('\n')
                |> Array.filter (fun line -> not (line.Contains "wall_seconds:" || line.Contains "solve_seconds:"))
                |> String.concat "\n"
            let a = text (plan ())
            let b = whileBusy (fun () -> text (plan ()))
            Expect.equal b a "same plan file"
        }
        test "no objective can overflow 64 bits: latency stays under 2^52 / (GPUs + 1) and CP-SAT accepts every stage" {
            // The Azure code trace's types at 8x its rate, with a TTFT and TPOT SLO, on 64 unpooled
            // nodes (512 GPUs): queueing delays near the target utilization ran to infinity, the
            // queue terms' coefficients hit their old 1e12 cap, and the spread objective overflowed.
            let slo = { TtftSec = Some 2.0; TpotSec = Some 0.2; E2eSec = None }
            let types =
                [| "t0", 130.4, 22.2, 3.5; "t1", 987.1, 13.1, 6.5; "t2", 2228.7, 99.2, 3.16; "t3", 3818.6, 13.0, 7.36 |]
                |> Array.map (fun (name, i, o, rate) -> { Name = name; InputTokens = i; OutputTokens = o; Rate = rate; Slo = slo })
            let nodes = Array.init 64 (fun i -> { PlannerBenchmark.unpooledCluster.Nodes[i % 32] with Name = sprintf "n%d" i; IntraLinkBytesPerSec = 30e9 + float i * 7e9 })
            let input = { unpooled 1 1.0 with Cluster = { PlannerBenchmark.unpooledCluster with Nodes = nodes }; Types = types }
            let options = { PlannerOptions.Default with SolveBudget = 0.25 }
            let p = CpSatPlanner.prepare options input |> Result.defaultWith (fun es -> failtestf "%A" es)
            Expect.isLessThanOrEqual (p.LatencyMagnitude * float (p.TotalGpus + 1L)) (2.0 ** 52.0) "spread objective magnitude"
            let s = solveOk options input
            for st in s.Stages do
                Expect.notEqual st.Status StageStatus.ModelInvalid (sprintf "CP-SAT rejected stage %s: %s" st.Stage st.StoppedBy)
        }
        test "a stage that stops at its budget is reported as such, never as optimal" {
            let options = { PlannerOptions.Default with SolveBudget = 0.1 }
            let s = solveOk options (unpooled 12 240.0)
            Expect.equal s.Status "Feasible" "overall status"
            let st = s.Stages |> List.find (fun st -> not st.IsFinished)
            Expect.stringContains (st.Describe()) "stopped by its work budget" "described"
        }
    ]
