namespace OServe.Planner.Solver

open OServe.Planner.CostModel

/// The built-in constraints as data (what a scenario's `constraints:` section or `oserve plan
/// --constraints` carries), so every planner can keep them: CP-SAT through the PlannerConstraints
/// they become, the paper's heuristic and the static baseline through `allows` and the capacities
/// and minimum counts below. Node and device indices refer to the cluster's Nodes.
type ConstraintRule =
    /// At most Count replicas of (Tp, Pp), of GpuType when given, over the cluster.
    | MaxReplicas of tp: int * pp: int * gpuType: string option * count: int
    /// Keep Gpus GPUs of node Node free.
    | KeepFree of node: int * gpus: int
    /// A replica of (Tp, Pp) with this id on exactly these devices (node, gpu), all in one node.
    | Pin of id: string * tp: int * pp: int * devices: (int * int)[]
    | MaxTp of int
    | MaxPp of int
    | NoCrossNodePp

[<RequireQualifiedAccess>]
module ConstraintRule =
    let name (cluster: ClusterSpec) (rule: ConstraintRule) =
        let node i = if i >= 0 && i < cluster.Nodes.Length then cluster.Nodes[i].Name else sprintf "#%d" i
        match rule with
        | MaxReplicas(tp, pp, gpu, n) -> sprintf "max_replicas %stp%d/pp%d <= %d" (gpu |> Option.map (fun g -> g + "/") |> Option.defaultValue "") tp pp n
        | KeepFree(n, g) -> sprintf "keep_free %s (%d GPUs)" (node n) g
        | Pin(id, tp, pp, ds) -> sprintf "pin %s tp%d/pp%d on %s" id tp pp (ds |> Array.map (fun (n, i) -> sprintf "%s/%d" (node n) i) |> String.concat ",")
        | MaxTp v -> sprintf "max_tp %d" v
        | MaxPp v -> sprintf "max_pp %d" v
        | NoCrossNodePp -> "no_cross_node_pp"

    /// Nodes a rule addresses one by one (kept out of node pooling).
    let isolatedNodes (rule: ConstraintRule) =
        match rule with
        | KeepFree(n, _) -> [ n ]
        | Pin(_, _, _, ds) when ds.Length > 0 -> [ fst ds[0] ]
        | _ -> []

    let private shapeMatches (tp: int) (pp: int) (gpu: string option) (c: ReplicaConfig) =
        c.Tp = tp && c.Pp = pp && (gpu |> Option.forall (fun g -> g = c.Gpu.Name))

    /// Configs a rule rules out altogether.
    let forbids (rule: ConstraintRule) (c: ReplicaConfig) =
        match rule with
        | MaxTp v -> c.Tp > v
        | MaxPp v -> c.Pp > v
        | NoCrossNodePp -> c.CrossNode
        | MaxReplicas(tp, pp, gpu, 0) -> shapeMatches tp pp gpu c
        | _ -> false

    /// GPUs of group g that the rules keep free.
    let reserved (rules: ConstraintRule list) (p: ScaledProblem) (g: int) =
        rules |> List.sumBy (function KeepFree(n, gpus) when Array.contains n p.Groups[g].Nodes -> gpus | _ -> 0)

    /// Replicas each candidate must have at least (its pins).
    let minimums (rules: ConstraintRule list) (p: ScaledProblem) : int[] =
        let mins = Array.zeroCreate p.Candidates.Length
        for rule in rules do
            match rule with
            | Pin(_, tp, pp, ds) when ds.Length > 0 ->
                let node = fst ds[0]
                p.Candidates
                |> Array.tryFind (fun c -> Array.contains node p.Groups[c.Group].Nodes && c.Config.Tp = tp && c.Config.Pp = pp && not c.Config.CrossNode)
                |> Option.iter (fun c -> mins[c.Index] <- mins[c.Index] + 1)
            | _ -> ()
        mins

    /// What replica counts break (empty when they keep every rule; pins are checked by count here
    /// and by device when placed).
    let violations (rules: ConstraintRule list) (cluster: ClusterSpec) (p: ScaledProblem) (counts: int[]) : string list =
        let mins = minimums rules p
        [ for rule in rules do
              match rule with
              | MaxReplicas(tp, pp, gpu, n) ->
                  let have = p.Candidates |> Array.sumBy (fun c -> if shapeMatches tp pp gpu c.Config then counts[c.Index] else 0)
                  if have > n then yield sprintf "%s: %d replicas" (name cluster rule) have
              | KeepFree _ -> ()
              | _ ->
                  match p.Candidates |> Array.tryFind (fun c -> counts[c.Index] > 0 && forbids rule c.Config) with
                  | Some c -> yield sprintf "%s: %d x %s" (name cluster rule) counts[c.Index] c.Config.Label
                  | None -> ()
          for g in p.Groups do
              let used = p.Candidates |> Array.sumBy (fun c -> if c.Group = g.Index then counts[c.Index] * c.Config.Size else 0)
              let keep = reserved rules p g.Index
              if keep > 0 && used > g.NumGpus - keep then yield sprintf "keep_free: %d GPUs of %s in use, %d must stay free" used cluster.Nodes[g.Nodes[0]].Name keep
          for c in p.Candidates do
              if counts[c.Index] < mins[c.Index] then yield sprintf "pin: %d pinned %s replicas on %s, %d planned" mins[c.Index] c.Config.Label cluster.Nodes[p.Groups[c.Group].Nodes[0]].Name counts[c.Index] ]

    /// The pinned replicas, to be placed on their devices before anything else.
    let pins (rules: ConstraintRule list) (cluster: ClusterSpec) : PlacedReplica[] =
        [| for rule in rules do
               match rule with
               | Pin(id, tp, pp, ds) when ds.Length > 0 ->
                   yield { Id = id; Config = { Gpu = cluster.Nodes[fst ds[0]].Gpu; Tp = tp; Pp = pp; CrossNode = false }; Devices = ds }
               | _ -> () |]

    /// The rules as CP-SAT constraints (pins on one node and config add up).
    let toConstraints (cluster: ClusterSpec) (rules: ConstraintRule list) : PlannerConstraint list =
        let forbidding =
            rules |> List.filter (function MaxTp _ | MaxPp _ | NoCrossNodePp -> true | _ -> false)
            |> List.map (fun rule ->
                { Name = name cluster rule; IsolatedNodes = []
                  Apply = fun ctx ->
                      for c in ctx.Candidates do
                          if forbids rule c.Config then ctx.Model.AddLinearConstraint(ctx.X[c.Index], 0L, 0L) |> ignore
                      Ok() })
        let counting =
            rules |> List.choose (function
                | MaxReplicas(tp, pp, gpu, n) as rule ->
                    Some { Name = name cluster rule; IsolatedNodes = []
                           Apply = fun ctx ->
                               ctx.Model.AddLinearConstraint(ctx.SumX(fun c -> if shapeMatches tp pp gpu c.Config then 1L else 0L), 0L, int64 n) |> ignore
                               Ok() }
                | KeepFree(n, gpus) -> Some { Constraints.reservedGpus n gpus with Name = name cluster (KeepFree(n, gpus)) }
                | _ -> None)
        let pinned =
            rules
            |> List.choose (function Pin(_, tp, pp, ds) when ds.Length > 0 -> Some((fst ds[0], tp, pp)) | _ -> None)
            |> List.countBy id
            |> List.map (fun ((node, tp, pp), k) ->
                { Name = sprintf "pin %d x tp%d/pp%d on %s" k tp pp cluster.Nodes[node].Name; IsolatedNodes = [ node ]
                  Apply = fun ctx ->
                      match ctx.CandidatesOnNode node |> Array.tryFind (fun c -> c.Config.Tp = tp && c.Config.Pp = pp && not c.Config.CrossNode) with
                      | Some c ->
                          ctx.Model.AddLinearConstraint(ctx.X[c.Index], int64 k, System.Int64.MaxValue / 4L) |> ignore
                          Ok()
                      | None -> Error(sprintf "no feasible tp%d/pp%d replica fits on node %s (memory or node size)" tp pp cluster.Nodes[node].Name) })
        forbidding @ counting @ pinned
