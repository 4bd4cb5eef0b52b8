namespace OServe.Planner.Solver

open System
open OServe.Planner.CostModel

/// The shipped constraints as F# builders; README-constraints.md (repository root) covers the YAML
/// kinds and writing one of your own.
[<RequireQualifiedAccess>]
module Constraints =
    /// No replica of a configuration that `excluded` holds for.
    let private forbid (name: string) (excluded: ReplicaConfig -> bool) : PlannerConstraint =
        { Name = name
          IsolatedNodes = []
          Apply =
            fun ctx ->
                for c in ctx.Candidates do
                    if excluded c.Config then ctx.Model.AddLinearConstraint(ctx.X[c.Index], 0L, 0L) |> ignore
                Ok() }

    /// No replica with tensor parallelism above maxTp.
    let maxTp (maxTp: int) : PlannerConstraint = forbid (sprintf "max-tp %d" maxTp) (fun c -> c.Tp > maxTp)

    /// No replica with tensor or pipeline parallelism above maxDegree (e.g. `oserve demo
    /// --max-parallelism`: logical devices that share cores gain nothing from sharding).
    let maxParallelism (maxDegree: int) : PlannerConstraint =
        if maxDegree < 1 then invalidArg (nameof maxDegree) (sprintf "a parallel degree is at least 1, got %d" maxDegree)
        forbid (sprintf "max-parallelism %d" maxDegree) (fun c -> c.Tp > maxDegree || c.Pp > maxDegree)

    /// Keeps `count` GPUs of node `nodeIndex` free (for another job, or a canary).
    let reservedGpus (nodeIndex: int) (count: int) : PlannerConstraint =
        { Name = sprintf "reserve %d GPUs on node #%d" count nodeIndex
          IsolatedNodes = [ nodeIndex ]
          Apply =
            fun ctx ->
                if nodeIndex < 0 || nodeIndex >= ctx.Cluster.Nodes.Length then Error(sprintf "node index %d is out of range" nodeIndex)
                else
                    let node = ctx.Cluster.Nodes[nodeIndex]
                    if count > node.NumGpus then Error(sprintf "cannot reserve %d GPUs on %s, which has %d" count node.Name node.NumGpus)
                    else
                        let g = ctx.GroupOfNode nodeIndex
                        let used = ctx.SumX(fun c -> if c.Group = g.Index then int64 c.Config.Size else 0L)
                        ctx.Model.AddLinearConstraint(used, 0L, int64 (g.NumGpus - count)) |> ignore
                        Ok() }

    /// At least one replica of (tp, pp) on node `nodeIndex` (e.g. a warm replica kept for a tenant).
    let pinnedReplica (nodeIndex: int) (tp: int) (pp: int) : PlannerConstraint =
        { Name = sprintf "pin tp%d/pp%d on node #%d" tp pp nodeIndex
          IsolatedNodes = [ nodeIndex ]
          Apply =
            fun ctx ->
                if nodeIndex < 0 || nodeIndex >= ctx.Cluster.Nodes.Length then Error(sprintf "node index %d is out of range" nodeIndex)
                else
                    match ctx.CandidatesOnNode nodeIndex |> Array.tryFind (fun c -> c.Config.Tp = tp && c.Config.Pp = pp) with
                    | Some c ->
                        ctx.Model.AddLinearConstraint(ctx.X[c.Index], 1L, Int64.MaxValue / 4L) |> ignore
                        Ok()
                    | None ->
                        Error(sprintf "no feasible tp%d/pp%d replica fits on node %s (memory or node size)" tp pp ctx.Cluster.Nodes[nodeIndex].Name) }

    /// Pins by node name (what YAML and the CLI carry); resolved against the cluster.
    let pinnedReplicaOn (cluster: OServe.Planner.CostModel.ClusterSpec) (node: string) (tp: int) (pp: int) : Result<PlannerConstraint, string> =
        match cluster.Nodes |> Array.tryFindIndex (fun n -> n.Name = node) with
        | Some i -> Ok(pinnedReplica i tp pp)
        | None -> Error(sprintf "no node '%s' in the cluster" node)

    /// GPUs in use over the whole cluster (every replica's size) kept within [lo, hi].
    let private gpusInUseWithin (ctx: ModelContext) (lo: int64) (hi: int64) =
        ctx.Model.AddLinearConstraint(ctx.SumX(fun c -> int64 c.Config.Size), lo, hi) |> ignore

    /// At most maxGpus GPUs in use over the whole cluster (a power or cost budget).
    let gpuBudget (maxGpus: int) : PlannerConstraint =
        { Name = sprintf "gpu-budget %d" maxGpus
          IsolatedNodes = []
          Apply =
            fun ctx ->
                gpusInUseWithin ctx 0L (int64 maxGpus)
                Ok() }

    /// At least minGpus GPUs in use over the whole cluster: a pool that is paid for stays busy. With
    /// a plan in force the planner otherwise spends its latency slack on the cheapest switch, which
    /// may leave devices idle to save bytes (e.g. 1 x tp2 -> 1 x tp1 on a rising load, then a second
    /// switch a window later); serving them keeps headroom for a forecast that runs behind.
    let minGpusInUse (minGpus: int) : PlannerConstraint =
        if minGpus < 0 then invalidArg (nameof minGpus) (sprintf "a GPU count is at least 0, got %d" minGpus)
        { Name = sprintf "min-gpus-in-use %d" minGpus
          IsolatedNodes = []
          Apply =
            fun ctx ->
                let total = ctx.Cluster.Nodes |> Array.sumBy (fun n -> n.NumGpus)
                if minGpus > total then Error(sprintf "min-gpus-in-use %d: the cluster has %d GPUs" minGpus total)
                else
                    gpusInUseWithin ctx (int64 minGpus) (Int64.MaxValue / 4L)
                    Ok() }

    /// A node left out entirely (maintenance).
    let excludedNode (nodeIndex: int) : PlannerConstraint =
        { Name = sprintf "exclude node #%d" nodeIndex
          IsolatedNodes = [ nodeIndex ]
          Apply =
            fun ctx ->
                if nodeIndex < 0 || nodeIndex >= ctx.Cluster.Nodes.Length then Error(sprintf "node index %d is out of range" nodeIndex)
                else (reservedGpus nodeIndex ctx.Cluster.Nodes[nodeIndex].NumGpus).Apply ctx }
