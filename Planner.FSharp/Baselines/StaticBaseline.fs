namespace OServe.Planner.Baselines

open OServe.Planner.Solver

/// vLLM as usually deployed: one (TP, PP) replicated over every GPU it fits, never changed. Every
/// feasible (TP, PP) is tried with its best routing (CP-SAT with the counts fixed), and the one
/// serving the most, then with the lowest latency, wins: the strongest static choice.
[<RequireQualifiedAccess>]
module StaticBaseline =
    /// (tp, pp) over every GPU the rules leave (GPUs kept free are skipped), at most as many
    /// replicas as a max_replicas rule allows. A shape that still breaks a rule (a pin of another
    /// shape) is found infeasible by the solve and skipped.
    let countsFor (rules: ConstraintRule list) (p: ScaledProblem) (tp: int) (pp: int) : int[] =
        let counts =
            p.Candidates |> Array.map (fun c ->
                if c.Config.Tp = tp && c.Config.Pp = pp then max 0 (p.Groups[c.Group].NumGpus - ConstraintRule.reserved rules p c.Group) / c.Config.Size else 0)
        for rule in rules do
            match rule with
            | MaxReplicas(rtp, rpp, gpu, n) when rtp = tp && rpp = pp ->
                let mutable excess = (p.Candidates |> Array.sumBy (fun c -> if gpu |> Option.forall ((=) c.Config.Gpu.Name) then counts[c.Index] else 0)) - n
                for c in Array.rev p.Candidates do
                    if excess > 0 && (gpu |> Option.forall ((=) c.Config.Gpu.Name)) then
                        let cut = min excess counts[c.Index]
                        counts[c.Index] <- counts[c.Index] - cut
                        excess <- excess - cut
            | _ -> ()
        counts

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
                    match CpSatPlanner.solveScaled fast input.Cluster p (Array.zeroCreate p.Candidates.Length) (Some(countsFor options.Rules p tp pp)) with
                    | Ok s -> Some((tp, pp), s)
                    | Error _ -> None)
            if results.Length = 0 then
                let rules = (options.Rules |> List.map (ConstraintRule.name input.Cluster)) @ (options.Constraints |> List.map (fun k -> k.Name))
                Error [ if rules.IsEmpty then "no static (one shape everywhere) deployment is feasible"
                        else sprintf "no static (one shape everywhere) deployment keeps the constraints: %s" (String.concat "; " rules) ]
            else
                let _, best = results |> Array.maxBy (fun (_, s) -> round (s.ServedRate * 1e6), -latency s)
                Ok(best, results |> Array.map (fun (k, s) -> k, s.ServedRate) |> List.ofArray))
