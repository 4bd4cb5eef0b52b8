namespace OServe.Planner.Baselines

open OServe.Planner.Solver

/// vLLM as usually deployed: one (TP, PP) replicated over every GPU it fits, never changed. Every
/// feasible (TP, PP) is tried with its best routing (CP-SAT with the counts fixed), and the one
/// serving the most, then with the lowest latency, wins: the strongest static choice.
[<RequireQualifiedAccess>]
module StaticBaseline =
    let countsFor (p: ScaledProblem) (tp: int) (pp: int) : int[] =
        p.Candidates |> Array.map (fun c ->
            if c.Config.Tp = tp && c.Config.Pp = pp then p.Groups[c.Group].NumGpus / c.Config.Size else 0)

    /// The CP-SAT latency objective (light-load latency plus queueing) of the routed deployment.
    let private latency (s: Solution) =
        s.Stages |> List.tryFind (fun st -> st.Stage = "latency") |> Option.map (fun st -> st.Objective) |> Option.defaultValue infinity

    /// The best static deployment and every (tp, pp) tried with its served rate.
    let solve (options: PlannerOptions) (input: PlanInput) : Result<Solution * ((int * int) * float) list, string list> =
        CpSatPlanner.prepare options input
        |> Result.bind (fun p ->
            let shapes = p.Candidates |> Array.map (fun c -> c.Config.Tp, c.Config.Pp) |> Array.distinct |> Array.sort
            let fast = { options with SolveBudget = max 0.3 (options.SolveBudget / float (max 1 shapes.Length)) }
            let results =
                shapes
                |> Array.choose (fun (tp, pp) ->
                    match CpSatPlanner.solveScaled fast input.Cluster p (Array.zeroCreate p.Candidates.Length) (Some(countsFor p tp pp)) with
                    | Ok s -> Some((tp, pp), s)
                    | Error _ -> None)
            if results.Length = 0 then Error [ "no static deployment is feasible" ]
            else
                let _, best = results |> Array.maxBy (fun (_, s) -> round (s.ServedRate * 1e6), -latency s)
                Ok(best, results |> Array.map (fun (k, s) -> k, s.ServedRate) |> List.ofArray))
