namespace OServe.Planner.Solver

/// A good first plan for the latency stage, built from the served stage's answer. The served stage
/// only maximizes the served rate, so its routing runs a few configs at the target utilization,
/// where queueing is steepest; started from there, CP-SAT spends most of a small budget walking
/// away from it (on a 256-GPU cluster its first latency objective was 12x the optimum). This gives
/// it a start near the optimum instead: more replicas where GPUs sit idle, and each type's served
/// units routed one at a time to the candidate whose latency objective rises least.
[<RequireQualifiedAccess>]
module StartingPoint =
    /// The queueing term t_c that a routing rc and count xc imply (the highest line, at least 0).
    let queueValue (p: ScaledProblem) (c: int) (rc: int64[]) (xc: int64) =
        p.QueueLines[c] |> Array.fold (fun m (slopes, b) -> max m (Array.fold2 (fun s k v -> s + k * v) 0L slopes rc + b * xc)) 0L

    /// Demand-weighted light-load latency of a candidate over the types it may serve (None: it serves none).
    let private mixLatency (p: ScaledProblem) (c: Candidate) =
        let served = [| 0 .. p.Types.Length - 1 |] |> Array.filter (fun j -> p.Allowed c.Index j && p.Demand[j] > 0L)
        if served.Length = 0 then None
        else Some((served |> Array.sumBy (fun j -> float (p.Demand[j]) * float (p.LatencyCost[c.Index][j]))) / (served |> Array.sumBy (fun j -> float (p.Demand[j]))))

    /// Each group's idle GPUs go, one replica at a time, to its busiest config in use. A group with
    /// no replica first gets one: of the shape groups with the same GPU use most, else of its
    /// config with the lowest light-load latency on the demand mix (route drops it if unused).
    let fill (p: ScaledProblem) (xs: int64[]) (rs: int64[][]) : int64[] =
        let xs = Array.copy xs
        let shapeUse =
            p.Candidates
            |> Array.filter (fun c -> xs[c.Index] > 0L)
            |> Array.groupBy (fun c -> c.Config.Gpu.Name, c.Config.Tp, c.Config.Pp)
            |> Array.map (fun (k, cs) -> k, cs |> Array.sumBy (fun c -> xs[c.Index] * int64 c.Config.Size))
            |> Map.ofArray
        let used (c: Candidate) = shapeUse |> Map.tryFind (c.Config.Gpu.Name, c.Config.Tp, c.Config.Pp) |> Option.defaultValue 0L
        for g in p.Groups do
            let inGroup = p.Candidates |> Array.filter (fun c -> c.Group = g.Index)
            if inGroup |> Array.forall (fun c -> xs[c.Index] = 0L) then
                let serving = inGroup |> Array.filter (fun c -> (mixLatency p c).IsSome)
                if serving.Length > 0 then
                    let c =
                        if serving |> Array.exists (fun c -> used c > 0L) then serving |> Array.maxBy (fun c -> used c, -c.Index)
                        else serving |> Array.minBy (fun c -> (mixLatency p c).Value, c.Index)
                    xs[c.Index] <- 1L
            let mutable free = int64 g.NumGpus - (inGroup |> Array.sumBy (fun c -> xs[c.Index] * int64 c.Config.Size))
            let load (c: Candidate) = Array.fold2 (fun s v w -> s + float v * float w) 0.0 rs[c.Index] p.LoadWeight[c.Index]
            let mutable adding = true
            while adding do
                let fits = inGroup |> Array.filter (fun c -> xs[c.Index] > 0L && int64 c.Config.Size <= free && xs[c.Index] < p.MaxCount[c.Index])
                if fits.Length = 0 then adding <- false
                else
                    let c = fits |> Array.maxBy (fun c -> load c / float xs[c.Index], -c.Index)
                    xs[c.Index] <- xs[c.Index] + 1L
                    free <- free - int64 c.Config.Size
        xs

    /// Routes `totals[j]` units of each type over the replicas `xs`, a unit at a time (types in
    /// turn), each to the candidate with the least rise of light-load latency plus queueing that
    /// still has load capacity. Configs left without traffic lose their replicas (a config with
    /// replicas must carry load). None when some unit fits nowhere.
    let route (p: ScaledProblem) (routable: int -> int -> bool) (xs: int64[]) (totals: int64[]) : (int64[] * int64[][]) option =
        let nC, nJ = p.Candidates.Length, p.Types.Length
        let xs = Array.copy xs
        let rs = Array.init nC (fun _ -> Array.zeroCreate<int64> nJ)
        let load = Array.zeroCreate<int64> nC
        let queue = Array.zeroCreate<int64> nC
        let left = Array.copy totals
        let mutable ok = true
        while ok && Array.exists (fun v -> v > 0L) left do
            for j in 0 .. nJ - 1 do
                if ok && left[j] > 0L then
                    let mutable best = -1
                    let mutable bestCost = System.Int64.MaxValue
                    let mutable bestQueue = 0L
                    for c in 0 .. nC - 1 do
                        if xs[c] > 0L && routable c j && load[c] + p.LoadWeight[c][j] <= p.LoadCapacity * xs[c] then
                            rs[c][j] <- rs[c][j] + 1L
                            let q = queueValue p c rs[c] xs[c]
                            rs[c][j] <- rs[c][j] - 1L
                            let cost = p.LatencyCost[c][j] + q - queue[c]
                            if cost < bestCost then
                                best <- c
                                bestCost <- cost
                                bestQueue <- q
                    if best < 0 then ok <- false
                    else
                        rs[best][j] <- rs[best][j] + 1L
                        load[best] <- load[best] + p.LoadWeight[best][j]
                        queue[best] <- bestQueue
                        left[j] <- left[j] - 1L
        if not ok then None
        else
            for c in 0 .. nC - 1 do
                if Array.sum rs[c] = 0L then xs[c] <- 0L
            Some(xs, rs)
