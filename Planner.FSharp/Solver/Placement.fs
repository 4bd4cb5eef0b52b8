namespace OServe.Planner.Solver

open System
open System.Collections.Generic
open OServe.Planner.CostModel

/// A deployment on concrete GPUs with the routed rate (requests/s) of each type on each replica.
type Deployment =
    { Replicas: PlacedReplica[]
      /// RatePerReplica[i][j]: type j's rate routed to Replicas[i].
      RatePerReplica: float[][] }

/// After the solve: puts replica counts onto concrete GPUs and splits each config's routed rate
/// evenly over its identical replicas.
[<RequireQualifiedAccess>]
module Placement =
    let private sameConfig (a: ReplicaConfig) (b: ReplicaConfig) = a.Gpu.Name = b.Gpu.Name && a.Tp = b.Tp && a.Pp = b.Pp

    let private tryPlace (cluster: ClusterSpec) (p: ScaledProblem) (counts: int[]) (keep: PlacedReplica[]) : PlacedReplica[] option =
        let free = cluster.Nodes |> Array.map (fun n -> SortedSet<int>(seq { 0 .. n.NumGpus - 1 }))
        let placed = List<PlacedReplica>()
        let usedIds = HashSet<string>()
        let remaining = Array.copy counts
        // Current replicas first, on their own GPUs, so they need no move.
        for r in keep do
            let group = r.Devices |> Array.tryHead |> Option.bind (fun (n, _) -> p.Groups |> Array.tryFind (fun g -> Array.contains n g.Nodes))
            match group with
            | Some g ->
                match p.Candidates |> Array.tryFind (fun c -> c.Group = g.Index && sameConfig c.Config r.Config && remaining[c.Index] > 0) with
                | Some c when r.Devices |> Array.forall (fun (n, i) -> n < free.Length && free[n].Contains i && Array.contains n g.Nodes) ->
                    for (n, i) in r.Devices do free[n].Remove i |> ignore
                    remaining[c.Index] <- remaining[c.Index] - 1
                    placed.Add { r with Config = c.Config }
                    usedIds.Add r.Id |> ignore
                | _ -> ()
            | None -> ()
        let mutable next = 0
        let freshId () =
            while usedIds.Contains(sprintf "r%d" next) do next <- next + 1
            let id = sprintf "r%d" next
            usedIds.Add id |> ignore
            id
        let mutable ok = true
        // Largest first; a replica within a node goes to the fullest node that still fits it (best
        // fit), one that spans nodes takes whole free nodes.
        let order = p.Candidates |> Array.sortByDescending (fun c -> c.Config.Size, -c.Index)
        for c in order do
            let g = p.Groups[c.Group]
            for _ in 1 .. remaining[c.Index] do
                if ok then
                    let size = c.Config.Size
                    if size <= g.GpusPerNode then
                        let fits = g.Nodes |> Array.filter (fun n -> free[n].Count >= size)
                        if fits.Length = 0 then ok <- false
                        else
                            let n = fits |> Array.minBy (fun n -> free[n].Count, n)
                            let gpus = free[n] |> Seq.take size |> Array.ofSeq
                            for i in gpus do free[n].Remove i |> ignore
                            placed.Add { Id = freshId (); Config = c.Config; Devices = gpus |> Array.map (fun i -> n, i) }
                    else
                        let wholeNodes = g.Nodes |> Array.filter (fun n -> free[n].Count = g.GpusPerNode)
                        let need = size / g.GpusPerNode
                        if wholeNodes.Length < need then ok <- false
                        else
                            let nodes = wholeNodes[0 .. need - 1]
                            // Stage-major device order: stage s uses tp GPUs of one node.
                            let devices = nodes |> Array.collect (fun n -> free[n] |> Seq.map (fun i -> n, i) |> Array.ofSeq)
                            for n in nodes do free[n].Clear()
                            placed.Add { Id = freshId (); Config = c.Config; Devices = devices }
        if ok then Some(placed.ToArray()) else None

    /// Places the counts: pinned replicas on their devices first (always), then current replicas
    /// that still fit their config in place. If keeping those fragments the nodes so that the rest
    /// no longer packs, everything but the pins is placed afresh.
    let place (cluster: ClusterSpec) (p: ScaledProblem) (counts: int[]) (pinned: PlacedReplica[]) (current: PlacedReplica[]) : Result<PlacedReplica[], string> =
        let pinsHeld (placed: PlacedReplica[]) =
            pinned |> Array.forall (fun pin -> placed |> Array.exists (fun r -> r.Id = pin.Id && r.Devices = pin.Devices))
        let attempt keep = tryPlace cluster p counts keep |> Option.filter pinsHeld
        match attempt (Array.append pinned current) with
        | Some r -> Ok r
        | None ->
            match attempt pinned with
            | Some r -> Ok r
            | None when pinned.Length > 0 ->
                Error(sprintf "the pinned replicas (%s) and the planned replica counts do not pack onto the nodes"
                          (pinned |> Array.map (fun r -> r.Id) |> String.concat ", "))
            | None -> Error "the replica counts do not pack onto the nodes (a node group's sizes are not a divisibility chain)"

    /// Splits each candidate's routed rate evenly over the placed replicas of that candidate.
    let route (p: ScaledProblem) (counts: int[]) (routed: float[][]) (replicas: PlacedReplica[]) : Deployment =
        let candidateOf (r: PlacedReplica) =
            let n = fst r.Devices[0]
            p.Candidates |> Array.find (fun c -> Array.contains n p.Groups[c.Group].Nodes && sameConfig c.Config r.Config)
        let rates =
            replicas |> Array.map (fun r ->
                let c = candidateOf r
                routed[c.Index] |> Array.map (fun v -> if counts[c.Index] = 0 then 0.0 else v / float counts[c.Index]))
        { Replicas = replicas; RatePerReplica = rates }
