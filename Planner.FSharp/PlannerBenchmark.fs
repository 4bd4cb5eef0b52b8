namespace OServe.Planner

open System
open System.Diagnostics
open System.IO
open System.Text
open OServe.Planner.CostModel
open OServe.Planner.Solver
open OServe.Planner.Baselines
open OServe.Planner.Workload
open OServe.Planner.Planning

/// Planner performance figures: plan time and gap at 32 and 256 GPUs (CP-SAT, static, the paper's
/// heuristic), and forecaster RRMSE on the Azure traces when `sharedDir` holds them.
[<RequireQualifiedAccess>]
module PlannerBenchmark =
    let private median (xs: float[]) = let s = Array.sort xs in s[s.Length / 2]

    /// Four request types fitted on the synthetic Azure mix, with total demand `totalRps`.
    let demands (totalRps: float) : TypeDemand[] =
        let trace = SyntheticWorkload.generate { SyntheticWorkload.defaults with DurationSec = 1800.0 }
        match RequestTyping.fit TypingOptions.Default trace.Requests with
        | Error e -> failwith e
        | Ok types ->
            types |> Array.map (fun t ->
                { Name = sprintf "t%d" t.Id; InputTokens = t.MeanInputTokens; OutputTokens = t.MeanOutputTokens
                  Rate = totalRps * t.Share; Slo = SloTarget.None })

    /// Keeps every node its own group (no pooling of identical nodes): the unaggregated model size.
    let private perNode (numNodes: int) : PlannerConstraint =
        { Name = "per-node variables"; IsolatedNodes = [ 0 .. numNodes - 1 ]; Apply = fun _ -> Ok() }

    let private planRow (sb: StringBuilder) (label: string) (numNodes: int) (totalRps: float) (runs: int) (maxSeconds: float) (isolate: bool) =
        let input =
            { Cluster = Hardware.uniformCluster Hardware.h100 numNodes 8; Model = Hardware.llama2_70b
              Types = demands totalRps; Current = [||] }
        let options =
            { PlannerOptions.Default with
                SolveBudget = maxSeconds; NumWorkers = 1; Constraints = (if isolate then [ perNode numNodes ] else []) }
        let timed (f: unit -> Result<Solution, string list>) =
            Array.init runs (fun _ ->
                let sw = Stopwatch.StartNew()
                let r = f ()
                sw.Elapsed.TotalSeconds, r)
        let report name (results: (float * Result<Solution, string list>)[]) =
            let times = results |> Array.map fst
            match snd results[results.Length - 1] with
            | Ok s ->
                sb.AppendLine(sprintf "%-13s %-16s %6d %8.1f %9.1f %9.2f %9.3f %9.3f %-16s %8s" label name (numNodes * 8) totalRps s.ServedRate
                                  (Planning.meanLatency s) (median times) (Array.max times) (s.Stages |> List.map (fun st -> (string st.Status).Substring(0, min 4 (string st.Status).Length)) |> String.concat "/") (if Double.IsNaN s.Gap then "-" else sprintf "%.3f%%" (100.0 * s.Gap))) |> ignore
            | Error es -> sb.AppendLine(sprintf "%-10s %-16s failed: %s" label name (String.Join("; ", es))) |> ignore
        report "cpsat" (timed (fun () -> CpSatPlanner.solve options input))
        report "static" (timed (fun () -> StaticBaseline.solve options input |> Result.map fst))
        report "paper-heuristic" (timed (fun () -> PaperHeuristic.solve options input))

    let llama3_8b = ModelSpec.Llama("Llama-3-8B", 32, 4096, 14336, 32, 8, 128256, 2, 8192)

    /// 32 nodes of 8 GPUs, H100, A100 and L40S in turn, each node with its own link speed: no two
    /// nodes alike, so nothing pools and the model has one group per node.
    let unpooledCluster : ClusterSpec =
        let gpus = [| Hardware.h100, 400e9; Hardware.a100, 300e9; Hardware.l40s, 32e9 |]
        Hardware.cluster
            (Array.init 32 (fun i ->
                let gpu, link = gpus[i % 3]
                Hardware.node (sprintf "n%d" i) gpu 8 (link + float i * 1e9)))
            100e9

    /// One row per (demand, budget): wall seconds and the stages' statuses, Llama-3-8B on the unpooled cluster.
    let unpooled (sb: StringBuilder) (budgets: float list) (workers: int) (runs: int) =
        for totalRps in [ 160.0; 640.0 ] do
            for budget in budgets do
                let input = { Cluster = unpooledCluster; Model = llama3_8b; Types = demands totalRps; Current = [||] }
                let options = { PlannerOptions.Default with SolveBudget = budget; NumWorkers = workers }
                let prep = Stopwatch.StartNew()
                CpSatPlanner.prepare options input |> ignore
                sb.AppendLine(sprintf "prepare %.2f s" prep.Elapsed.TotalSeconds) |> ignore
                let results =
                    Array.init runs (fun _ ->
                        let sw = Stopwatch.StartNew()
                        let r = CpSatPlanner.solve options input
                        sw.Elapsed.TotalSeconds, r)
                let times = results |> Array.map fst
                match snd results[0] with
                | Ok s ->
                    let same = results |> Array.forall (fun (_, r) -> match r with Ok o -> o.Counts = s.Counts && o.Routed = s.Routed | Error _ -> false)
                    let replicas = Array.sum s.Counts
                    let gpusUsed = s.Problem.Candidates |> Array.sumBy (fun c -> s.Counts[c.Index] * c.Config.Size)
                    sb.AppendLine(sprintf "%-13s %6.0f rps budget %5.2f workers %d: served %8.2f, latency %6.3f s, %3d replicas on %3d GPUs, median %6.2f s, max %6.2f s, identical %b, %s"
                                      "256-unpooled" totalRps budget workers s.ServedRate (Planning.meanLatency s) replicas gpusUsed (median times) (Array.max times) same
                                      (s.Stages |> List.map (fun st -> sprintf "%s %s %.2f/%.2f det %.2fs" st.Stage (string st.Status) st.DeterministicTime st.Budget st.Seconds) |> String.concat ", ")) |> ignore
                | Error es -> sb.AppendLine(sprintf "256-unpooled %6.0f rps budget %5.2f: failed: %s" totalRps budget (String.Join("; ", es))) |> ignore

    let private forecastRows (sb: StringBuilder) (sharedDir: string option) =
        for name in [ "conv"; "code" ] do
            let path = sharedDir |> Option.map (fun d -> Path.Combine(d, "traces", "azure2023", sprintf "AzureLLMInferenceTrace_%s.csv" name))
            match path with
            | Some p when File.Exists p ->
                match TraceReader.read p with
                | Error es -> sb.AppendLine(sprintf "%s: %s" name (String.Join("; ", es |> List.map string))) |> ignore
                | Ok trace ->
                    match Forecasting.report trace 60.0 4 0 with
                    | Ok r -> sb.AppendLine(sprintf "Azure %s trace:" name).Append(r.Text) |> ignore
                    | Error e -> sb.AppendLine(sprintf "%s: %s" name e) |> ignore
            | _ -> sb.AppendLine(sprintf "Azure %s trace: skipped (../shared/traces/azure2023 not found)" name) |> ignore

    /// Runs everything and returns the table text. `runs` solves per row (median reported).
    let run (sharedDir: string option) (runs: int) : string =
        let sb = StringBuilder()
        sb.AppendLine(sprintf "planner benchmark: Llama-2-70B on H100 x 8 nodes, 4 types, %d runs per row, %d CPU cores" runs Environment.ProcessorCount) |> ignore
        sb.AppendLine(sprintf "%-13s %-16s %6s %8s %9s %9s %9s %9s %-16s %8s" "case" "planner" "gpus" "demand" "served" "latency" "median s" "max s" "stages" "gap") |> ignore
        planRow sb "4x8" 4 40.0 runs 10.0 false
        planRow sb "4x8-busy" 4 150.0 runs 10.0 false
        planRow sb "32x8" 32 320.0 runs 30.0 false
        planRow sb "32x8-busy" 32 1200.0 runs 30.0 false
        planRow sb "32x8-pernode" 32 320.0 runs 30.0 true
        sb.AppendLine() |> ignore
        forecastRows sb sharedDir
        sb.ToString()
