namespace OServe.Planner.Planning

open System
open OServe.Contracts
open OServe.Planner.CostModel
open OServe.Planner.Solver

/// A problem with an input, with the field it concerns (contract field path or request field).
type PlanError =
    { Field: string
      Message: string }

    override e.ToString() = if String.IsNullOrEmpty e.Field then e.Message else sprintf "%s: %s" e.Field e.Message

/// Converts between the Contracts records (what crosses project lines) and the planner's own types.
[<RequireQualifiedAccess>]
module ContractMapping =
    let gpu (t: GpuType) : GpuSpec =
        { Name = t.Name
          MemoryBytes = int64 (t.MemoryGib * float Hardware.GiB)
          PeakFlops = t.Tflops * 1e12
          HbmBytesPerSec = t.HbmGbps * 1e9 }

    let cluster (c: Cluster) : Result<ClusterSpec, PlanError list> =
        let errors =
            c.Nodes |> Seq.mapi (fun i n -> i, n)
            |> Seq.filter (fun (_, n) -> not (c.GpuTypes |> Seq.exists (fun t -> t.Name = n.GpuType)))
            |> Seq.map (fun (i, n) -> { Field = sprintf "nodes[%d].gpu_type" i; Message = sprintf "'%s' is not one of the cluster's gpu_types" n.GpuType })
            |> List.ofSeq
        if not errors.IsEmpty then Error errors
        else
            Ok { Nodes =
                   c.Nodes
                   |> Seq.map (fun n ->
                       let d = Hardware.node n.Name (gpu (c.GpuTypeOf n)) n.Gpus (n.IntraLinkGbps * 1e9)
                       { d with
                           AllReduceLatencySec = (if n.AllreduceLatencyUs.HasValue then n.AllreduceLatencyUs.Value * 1e-6 else d.AllReduceLatencySec)
                           AllReduceBusBytesPerSec = (if n.AllreduceBusGbps.HasValue then n.AllreduceBusGbps.Value * 1e9 else d.AllReduceBusBytesPerSec) })
                   |> Array.ofSeq
                 InterLinkBytesPerSec = c.InterNodeLinkGbps * 1e9
                 InterLatencySec = if c.InterNodeLatencyUs.HasValue then c.InterNodeLatencyUs.Value * 1e-6 else Hardware.defaultInterLatencySec }

    let model (m: ModelCard) : ModelSpec =
        let input =
            int64 m.Vocab * int64 m.Hidden
            + (if m.Architecture = ModelArchitecture.Opt then int64 (m.MaxContext + 2) * int64 m.Hidden else 0L)
        { Name = m.Name; NumLayers = m.Layers; HiddenSize = m.Hidden; NumHeads = m.Heads; NumKvHeads = m.KvHeads
          HeadDim = m.HeadDim; DtypeBytes = m.DtypeBytes; MaxContextTokens = m.MaxContext
          ParamsPerLayer = m.ParamsPerLayer
          InputParams = input
          OutputParams = m.ParamCount - int64 m.Layers * m.ParamsPerLayer - input }

    let slo (s: Slo) : SloTarget =
        { TtftSec = Option.ofNullable s.TtftS; TpotSec = Option.ofNullable s.TpotS; E2eSec = Option.ofNullable s.E2eS }

    let demands (types: RequestTypeSpec seq) (s: Slo) : Result<TypeDemand[], PlanError list> =
        let ts = Array.ofSeq types
        let errors =
            [ if ts.Length = 0 then { Field = "request_types"; Message = "no request types: nothing to plan for" }
              for i, t in Array.indexed ts do
                  if not (t.InputTokens > 0.0) then { Field = sprintf "request_types[%d].input_tokens" i; Message = sprintf "must be > 0, got %g" t.InputTokens }
                  if not (t.OutputTokens > 0.0) then { Field = sprintf "request_types[%d].output_tokens" i; Message = sprintf "must be > 0, got %g" t.OutputTokens }
                  if not (t.RateRps >= 0.0) || Double.IsInfinity t.RateRps then { Field = sprintf "request_types[%d].rate_rps" i; Message = sprintf "must be a rate >= 0, got %g" t.RateRps } ]
        if not errors.IsEmpty then Error errors
        else Ok(ts |> Array.map (fun t -> { Name = t.Name; InputTokens = t.InputTokens; OutputTokens = t.OutputTokens; Rate = t.RateRps; Slo = slo s }))

    /// The replicas of a running plan on the planner's cluster view.
    let placed (spec: ClusterSpec) (plan: Plan) : Result<PlacedReplica[], PlanError list> =
        let nodeIndex name = spec.Nodes |> Array.tryFindIndex (fun n -> n.Name = name)
        let results =
            plan.Replicas |> Seq.mapi (fun i r ->
                let devices =
                    r.Devices |> Seq.mapi (fun d text ->
                        match DeviceId.TryParse text with
                        | true, id ->
                            match nodeIndex id.Node with
                            | Some n when id.Index < spec.Nodes[n].NumGpus -> Ok(n, id.Index)
                            | _ -> Error { Field = sprintf "current.replicas[%d].devices[%d]" i d; Message = sprintf "GPU %s is not in the cluster" text }
                        | _ -> Error { Field = sprintf "current.replicas[%d].devices[%d]" i d; Message = sprintf "'%s' is not a device id node/index" text })
                    |> List.ofSeq
                match devices |> List.choose (function Error e -> Some e | _ -> None) with
                | [] ->
                    let ds = devices |> List.choose (function Ok d -> Some d | _ -> None) |> Array.ofList
                    if ds.Length = 0 then Error [ { Field = sprintf "current.replicas[%d].devices" i; Message = "no devices" } ]
                    else
                        let gpu = spec.Nodes[fst ds[0]].Gpu
                        let crossNode = ds |> Array.map fst |> Array.distinct |> Array.length > 1
                        Ok { Id = r.Id; Config = { Gpu = gpu; Tp = r.Tp; Pp = r.Pp; CrossNode = crossNode }; Devices = ds }
                | es -> Error es)
            |> List.ofSeq
        match results |> List.collect (function Error e -> e | _ -> []) with
        | [] -> Ok(results |> List.choose (function Ok r -> Some r | _ -> None) |> Array.ofList)
        | es -> Error es

    let deviceText (spec: ClusterSpec) (n: int, i: int) = sprintf "%s/%d" spec.Nodes[n].Name i

    /// The built-in constraints on the planner's cluster view (node names to indices). Contracts'
    /// PlanConstraints.Check reports the same problems with file and line first; this is the net.
    let rules (spec: ClusterSpec) (specs: ConstraintSpec seq) : Result<ConstraintRule list, PlanError list> =
        let nodeIndex name = spec.Nodes |> Array.tryFindIndex (fun n -> n.Name = name)
        let results =
            specs |> Seq.mapi (fun i c ->
                let at field = sprintf "constraints[%d].%s" i field
                let fail field message = Error [ { Field = at field; Message = message } ]
                let pp = if c.Pp.HasValue then c.Pp.Value else 1
                match c.Kind with
                | ConstraintKind.MaxReplicas -> Ok(MaxReplicas(c.Tp.GetValueOrDefault 1, pp, Option.ofObj c.GpuType, c.Count.GetValueOrDefault 0))
                | ConstraintKind.KeepFree ->
                    match nodeIndex (string c.Node) with
                    | Some n -> Ok(KeepFree(n, (if c.Gpus.HasValue then min c.Gpus.Value spec.Nodes[n].NumGpus else spec.Nodes[n].NumGpus)))
                    | None -> fail "node" (sprintf "no node '%s' in the cluster" c.Node)
                | ConstraintKind.Pin ->
                    let devices =
                        (match c.Devices with null -> Seq.empty | ds -> ds :> seq<string>)
                        |> Seq.map (fun text ->
                            match DeviceId.TryParse text with
                            | true, id -> nodeIndex id.Node |> Option.filter (fun n -> id.Index < spec.Nodes[n].NumGpus) |> Option.map (fun n -> n, id.Index)
                            | _ -> None)
                        |> Array.ofSeq
                    if devices.Length = 0 || devices |> Array.exists Option.isNone then fail "devices" "names a GPU that is not in the cluster"
                    else
                        let ds = devices |> Array.choose id
                        if ds |> Array.map fst |> Array.distinct |> Array.length > 1 then fail "devices" "a pinned replica must lie in one node"
                        else Ok(Pin(PlanConstraints.PinId(Array.ofSeq specs, i), c.Tp.GetValueOrDefault ds.Length, pp, ds))
                | ConstraintKind.MaxTp -> Ok(MaxTp(c.Value.GetValueOrDefault System.Int32.MaxValue))
                | ConstraintKind.MaxPp -> Ok(MaxPp(c.Value.GetValueOrDefault System.Int32.MaxValue))
                | _ -> Ok NoCrossNodePp)
            |> List.ofSeq
        match results |> List.collect (function Error e -> e | Ok _ -> []) with
        | [] -> Ok(results |> List.choose (function Ok r -> Some r | Error _ -> None))
        | es -> Error es
