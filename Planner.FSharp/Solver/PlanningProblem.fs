namespace OServe.Planner.Solver

open System
open OServe.Planner.CostModel

/// SLO targets of a type (seconds); None is not enforced.
type SloTarget =
    { TtftSec: float option
      TpotSec: float option
      E2eSec: float option }

    static member None = { TtftSec = None; TpotSec = None; E2eSec = None }

/// One request type of the window: representative lengths and its (forecast) arrival rate.
type TypeDemand =
    { Name: string
      InputTokens: float
      OutputTokens: float
      Rate: float
      Slo: SloTarget }

/// Nodes with the same GPU type, GPU count and link are interchangeable; the model counts replicas
/// per group instead of per node. Exact because every config size is a power of two: replica sizes
/// form a divisibility chain that divides (or is a multiple of) the node size, so any counts whose
/// GPU total fits the group's pool pack onto its nodes (first-fit decreasing). Groups whose node
/// size is not a power of two, and nodes a constraint names, are kept as single-node groups.
type NodeGroup =
    { Index: int
      Gpu: GpuSpec
      GpusPerNode: int
      IntraLinkBytesPerSec: float
      Nodes: int[] }

    member g.NumGpus = g.GpusPerNode * g.Nodes.Length

/// A replica configuration the solver may use, bound to the node group it would live in.
type Candidate =
    { Index: int
      Config: ReplicaConfig
      Group: int
      Memory: ReplicaMemory
      /// Per type (same order as the demands): throughput and latency at the target utilization.
      Service: ServiceEstimate[]
      /// Per type: the estimate at another utilization (for latency curves and reports).
      EstimateAt: float -> ServiceEstimate[] }

/// A replica on concrete GPUs: Devices are (node index, gpu index), stage by stage (PP-major).
type PlacedReplica =
    { Id: string
      Config: ReplicaConfig
      Devices: (int * int)[] }

type ServedMeasure =
    /// Maximize requests/s served.
    | Requests = 0
    /// Maximize tokens/s served (input + output tokens of each type).
    | Tokens = 1

type ObjectiveMode =
    /// Solve for served rate; fix it; minimize latency (within LatencyTolerance); fix it; minimize
    /// switch cost, then unused GPUs. Each stage is hinted with the previous solution.
    | Lexicographic
    /// One solve of ServedWeight * served - LatencyWeight * latency - SwitchWeight * switch cost
    /// (all in the solver's integer units: rate units, rate units * ms, and 10 ms switch units).
    | Weighted of servedWeight: int64 * latencyWeight: int64 * switchWeight: int64

/// Integer data of the model: what CP-SAT sees. Exposed so tests can check the solver against
/// brute-force enumeration of the very same numbers.
type ScaledProblem =
    { Groups: NodeGroup[]
      Candidates: Candidate[]
      Types: TypeDemand[]
      /// Requests/s represented by one unit of r.
      RateUnit: float
      /// lambda_j in rate units.
      Demand: int64[]
      /// LoadWeight[c][j]: load of one rate unit of type j on config c, in 1/LoadScale of a replica;
      /// 0 where c may not serve j (rate 0 or SLO missed).
      LoadWeight: int64[][]
      /// floor(rho * LoadScale): load allowed per replica.
      LoadCapacity: int64
      LoadScale: int64
      /// E2E latency of (c, j) at light load (queueing excluded; see QueueLines), in LatencyUnitSec
      /// (10 ms unless a huge problem needed coarser units to keep every objective far below 2^63).
      LatencyCost: int64[][]
      /// Seconds per unit of LatencyCost and of the queueing terms.
      LatencyUnitSec: float
      /// Queueing delay of candidate c as a convex piecewise-linear function of its load: for
      /// every line (slope, intercept), t_c >= sum_j slope[j] * r_cj + intercept * x_c, where t_c
      /// (rate units * LatencyUnitSec) is the extra delay summed over the requests c serves. This is the
      /// perspective x * g(load / x) of g(u) = requests/s at utilization u times the extra delay
      /// at u, so spreading load over more replicas lowers it, as queueing does.
      QueueLines: (int64[] * int64)[][]
      /// Objective weight of one served rate unit of type j.
      ServedWeight: int64[]
      /// Upper bound on replicas of each candidate (group GPUs / size).
      MaxCount: int64[] }

    member p.Allowed c j = p.LoadWeight[c][j] > 0L

    /// Largest value the queueing term t_c can need: the highest line at full demand and count.
    member p.QueueTop(c: int) =
        p.QueueLines[c] |> Array.fold (fun m (slopes, b) ->
            let routed = Array.fold2 (fun s k d -> s + float k * float d) 0.0 slopes p.Demand
            max m (routed + float (max 0L b) * float (p.MaxCount[c]))) 1.0

    /// Largest value the latency objective (light-load latency of every routed unit plus every
    /// queueing term) can take: sum |coefficient| * upper bound, what CP-SAT checks against 2^63.
    member p.LatencyMagnitude =
        let routed =
            p.Candidates |> Array.sumBy (fun c ->
                p.Types |> Array.mapi (fun j _ -> if p.Allowed c.Index j then float (p.LatencyCost[c.Index][j]) * float (p.Demand[j]) else 0.0) |> Array.sum)
        routed + (p.Candidates |> Array.sumBy (fun c -> p.QueueTop c.Index))

    member p.TotalGpus = p.Groups |> Array.sumBy (fun g -> int64 g.NumGpus)

[<RequireQualifiedAccess>]
module PlanningProblem =
    let private isPowerOfTwo n = n > 0 && (n &&& (n - 1)) = 0

    /// Groups identical nodes; `isolate` lists node indices that must stay single-node groups.
    let groups (cluster: ClusterSpec) (isolate: Set<int>) : NodeGroup[] =
        let key (n: NodeSpec) = n.Gpu.Name, n.NumGpus, n.IntraLinkBytesPerSec, n.AllReduceLatencySec, n.AllReduceBusBytesPerSec
        let indexed = cluster.Nodes |> Array.indexed
        let single, pooled =
            indexed |> Array.partition (fun (i, n) -> isolate.Contains i || not (isPowerOfTwo n.NumGpus))
        let pooledGroups =
            pooled |> Array.groupBy (fun (_, n) -> key n) |> Array.map (fun (_, members) -> Array.map fst members)
        let singleGroups = single |> Array.map (fun (i, _) -> [| i |])
        Array.append pooledGroups singleGroups
        |> Array.sortBy Array.min
        |> Array.mapi (fun gi nodes ->
            let n = cluster.Nodes[nodes[0]]
            { Index = gi; Gpu = n.Gpu; GpusPerNode = n.NumGpus; IntraLinkBytesPerSec = n.IntraLinkBytesPerSec; Nodes = nodes })

    let links (cluster: ClusterSpec) (g: NodeGroup) = Links.ofNode cluster cluster.Nodes[g.Nodes[0]]

    /// Every feasible (TP, PP) per group: TP a power of two within a node, PP a power of two up to
    /// maxPp; a replica larger than a node spans whole nodes (CrossNode), only in pooled groups.
    /// Rates and latencies come from `service` (analytic or measured); memory always from `k`.
    let candidates (k: CostCoefficients) (service: IServiceModel) (model: ModelSpec) (cluster: ClusterSpec) (groups: NodeGroup[])
                   (types: TypeDemand[]) (rho: float) (maxPp: int) : Candidate[] * string list =
        let rejected = Collections.Generic.List<string>()
        let found =
            [| for g in groups do
                 let powers limit = [ 1; 2; 4; 8; 16; 32; 64 ] |> List.filter (fun v -> v <= limit)
                 for tp in powers g.GpusPerNode do
                     for pp in powers maxPp do
                         let size = tp * pp
                         let crossNode = size > g.GpusPerNode
                         let fitsGroup =
                             size <= g.NumGpus && (not crossNode || (isPowerOfTwo g.GpusPerNode && size % g.GpusPerNode = 0))
                         if fitsGroup then
                             let config = { Gpu = g.Gpu; Tp = tp; Pp = pp; CrossNode = crossNode }
                             match ReplicaCost.memory k model config with
                             | Error why -> rejected.Add why
                             | Ok mem ->
                                 let at (u: float) =
                                     types |> Array.map (fun t -> service.Estimate(model, config, links cluster g, mem, t.InputTokens, t.OutputTokens, u))
                                 yield { Index = 0; Config = config; Group = g.Index; Memory = mem; Service = at rho; EstimateAt = at } |]
            |> Array.mapi (fun i c -> { c with Index = i })
        found, List.ofSeq (Seq.distinct rejected)

    /// A config serves a type only with a finite latency at the target utilization (prefill stalls
    /// can make decoding unstable before the throughput limit) and within the type's SLO.
    let meetsSlo (slo: SloTarget) (s: ServiceEstimate) =
        s.Rate > 0.0
        && Double.IsFinite s.E2eSec
        && (slo.TtftSec |> Option.forall (fun v -> s.TtftSec <= v))
        && (slo.TpotSec |> Option.forall (fun v -> s.TpotSec <= v))
        && (slo.E2eSec |> Option.forall (fun v -> s.E2eSec <= v))

    /// Queueing delay beyond this many seconds per request is counted as this much: any plan that
    /// queues that long is unusable, and the cap keeps the queue terms' coefficients bounded.
    let maxQueueDelaySec = 600.0

    /// The spread stage weighs latency by (GPUs + 1) so that one unit of latency outweighs every
    /// idle GPU; this keeps that product (and so every objective) under 2^52, exact in the LP's
    /// doubles and far from CP-SAT's 64-bit overflow check.
    let latencyLimit (totalGpus: int64) = 2.0 ** 52.0 / float (totalGpus + 1L)

    /// Coarser latency units (10 ms times a power of 10) until the latency objective fits latencyLimit.
    let private coarsen (p: ScaledProblem) : ScaledProblem =
        let limit = latencyLimit p.TotalGpus
        let magnitude = p.LatencyMagnitude
        if magnitude <= limit then p
        else
            let factor = 10.0 ** ceil (log10 (magnitude / limit))
            let down (v: int64) = if v = 0L then 0L else int64 (Math.Ceiling(float v / factor))
            let downSigned (v: int64) = if v >= 0L then down v else -(down -v)
            { p with
                LatencyUnitSec = p.LatencyUnitSec * factor
                LatencyCost = p.LatencyCost |> Array.map (Array.map down)
                QueueLines = p.QueueLines |> Array.map (Array.map (fun (slopes, b) -> Array.map down slopes, downSigned b)) }

    /// Scales rates to integers: the busiest type gets `resolution` units.
    let scale (groups: NodeGroup[]) (candidates: Candidate[]) (types: TypeDemand[]) (rho: float)
              (resolution: int) (measure: ServedMeasure) : ScaledProblem =
        let maxRate = types |> Array.fold (fun m t -> max m t.Rate) 0.0
        let unit = if maxRate <= 0.0 then 1.0 else maxRate / float resolution
        // Load weights are rounded up, so the scale keeps even the fastest (c, j) at >= 100 units
        // per rate unit: rounding costs at most 1% of capacity.
        let fastest =
            candidates |> Array.fold (fun m c -> c.Service |> Array.fold (fun m s -> if s.Rate > 0.0 then max m s.Rate else m) m) 0.0
        let loadScale =
            if fastest <= 0.0 then 1000L
            else max 1000L (int64 (10.0 ** ceil (log10 (100.0 * fastest / unit))))
        let loadWeight =
            candidates
            |> Array.map (fun c ->
                types |> Array.mapi (fun j t ->
                    let s = c.Service[j]
                    if meetsSlo t.Slo s then max 1L (int64 (Math.Ceiling(float loadScale * unit / s.Rate)))
                    else
                        // Missing the SLO at rho need not rule the pair out: at a lower utilization
                        // u it may hold (long prompts queue behind each other). Then one replica
                        // counts for u / rho of its rate, so a full load constraint means utilization u.
                        let lower = [ 0.8; 0.65; 0.5; 0.35; 0.2; 0.1 ] |> List.map (fun f -> f * rho)
                        let ok = lower |> List.tryFind (fun u -> let e = c.EstimateAt u in meetsSlo t.Slo e[j])
                        match ok with
                        | Some u -> max 1L (int64 (Math.Ceiling(float loadScale * unit * rho / (u * s.Rate))))
                        | None -> 0L))
        let light = 0.01
        let toCost (sec: float) = if Double.IsFinite sec then int64 (Math.Ceiling(sec * 100.0)) else 0L
        let latency = candidates |> Array.map (fun c -> c.EstimateAt light |> Array.map (fun s -> toCost s.E2eSec))
        let totalRate = types |> Array.sumBy (fun t -> t.Rate)
        let share j = if totalRate > 0.0 then types[j].Rate / totalRate else 1.0 / float types.Length
        let queueLines =
            candidates |> Array.mapi (fun ci c ->
                let served = [| 0 .. types.Length - 1 |] |> Array.filter (fun j -> loadWeight[ci][j] > 0L)
                if served.Length = 0 then [||]
                else
                    let wsum = served |> Array.sumBy share
                    let weight j = if wsum > 0.0 then share j / wsum else 1.0 / float served.Length
                    // Mix rate of one replica at full utilization (rate units), and the
                    // demand-weighted extra delay at utilization u (10 ms units).
                    let mixRate = 1.0 / (served |> Array.sumBy (fun j -> weight j / c.Service[j].Rate)) / unit
                    let atLight = c.EstimateAt light
                    let extra (u: float) =
                        let e = c.EstimateAt u
                        let delay j = if Double.IsFinite e[j].E2eSec then min maxQueueDelaySec (max 0.0 (e[j].E2eSec - atLight[j].E2eSec)) else maxQueueDelaySec
                        served |> Array.sumBy (fun j -> weight j * delay j * 100.0)
                    let g (u: float) = if u <= 0.0 then 0.0 else u * mixRate * extra u
                    [| 0.0; 0.35; 0.6; 0.76; 0.88; 1.0 |]
                    |> Array.map (fun f -> f * rho)
                    |> Array.pairwise
                    |> Array.map (fun (u0, u1) ->
                        let a = (g u1 - g u0) / (u1 - u0) // cost per unit of utilization
                        let b = g u0 - a * u0
                        // Utilization per rate unit of type j is unit / rate_cj. The delay cap bounds
                        // a and b; the cap here only guards the conversion to int64 (coarsen then
                        // brings the objective's total under latencyLimit).
                        let cap = 1e15
                        let slopes = types |> Array.mapi (fun j _ -> if loadWeight[ci][j] > 0L then int64 (min cap (Math.Ceiling(a * unit / c.Service[j].Rate))) else 0L)
                        slopes, int64 (max -cap (Math.Floor b))))
        let served =
            types |> Array.map (fun t -> if measure = ServedMeasure.Tokens then max 1L (int64 (Math.Round(t.InputTokens + t.OutputTokens))) else 1L)
        coarsen
            { Groups = groups
              Candidates = candidates
              Types = types
              RateUnit = unit
              // Rounded up: when every unit of a type is routed, its whole rate is (the solution's
              // routing is scaled back to the real rate), so routing weights sum to 1.
              Demand = types |> Array.map (fun t -> int64 (Math.Ceiling(t.Rate / unit - 1e-9)))
              LoadWeight = loadWeight
              LoadCapacity = int64 (Math.Floor(rho * float loadScale))
              LoadScale = loadScale
              LatencyCost = latency
              LatencyUnitSec = 0.01
              QueueLines = queueLines
              ServedWeight = served
              MaxCount = candidates |> Array.map (fun c -> int64 (groups[c.Group].NumGpus / c.Config.Size)) }
