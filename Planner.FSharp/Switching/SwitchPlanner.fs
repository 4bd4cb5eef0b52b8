namespace OServe.Planner.Switching

open System
open System.Collections.Generic
open OServe.Planner.CostModel
open OServe.Planner.Solver

type StepKind =
    | Keep = 0
    | Drain = 1
    | MoveKv = 2
    | CopyShard = 3
    | LoadShard = 4
    | Stop = 5
    | Start = 6

/// One step of a switch; Source is a (node, gpu) or None for storage.
type Step =
    { Kind: StepKind
      Replica: string
      Device: (int * int) option
      Source: (int * int) option
      Bytes: int64
      EstSeconds: float }

type SwitchSchedule =
    { Steps: Step[]
      TotalBytes: int64
      /// Wall time: copies on different links overlap; each device link and each node's storage
      /// read is a queue, and the switch ends when the busiest queue drains.
      EstSeconds: float }

/// Whether moving to a new deployment pays over the coming window.
type SwitchVerdict =
    { Pays: bool
      GainRequests: float
      LostRequests: float
      Reason: string }

[<RequireQualifiedAccess>]
module SwitchPlanner =
    /// Fraction [lo, hi) of layers held by stage s of pp, and of columns by rank k of tp.
    let private span (s: int) (n: int) = float s / float n, float (s + 1) / float n

    let private overlap (a0: float, a1: float) (b0: float, b1: float) = max 0.0 (min a1 b1 - max a0 b0)

    /// Stage and rank of device position i in a replica (devices are stage-major).
    let private position (c: ReplicaConfig) (i: int) = i / c.Tp, i % c.Tp

    /// Switch steps from `current` to `target` (replicas with the same id and devices are kept).
    /// Each new shard is assembled from the current replica that can supply it most cheaply: bytes
    /// already on the device cost nothing, then NVLink within the node, then the inter-node link;
    /// with no source (cold start, reload mode) it is read from storage. Removed replicas drain
    /// their short sequences and move the KV of long ones (those with more than
    /// DrainMaxRemainingTokens left), estimated from KV capacity at utilization rho.
    let plan (k: CostCoefficients) (model: ModelSpec) (cluster: ClusterSpec) (storageBytesPerSec: float) (reload: bool)
             (rho: float) (longShare: float) (current: PlacedReplica[]) (target: PlacedReplica[]) : SwitchSchedule =
        let steps = List<Step>()
        let isKept (r: PlacedReplica) = current |> Array.exists (fun c -> c.Id = r.Id && c.Devices = r.Devices && c.Config.Tp = r.Config.Tp && c.Config.Pp = r.Config.Pp)
        let kept, fresh = target |> Array.partition isKept
        let removed = current |> Array.filter (fun c -> not (kept |> Array.exists (fun r -> r.Id = c.Id)))
        for r in kept do steps.Add { Kind = StepKind.Keep; Replica = r.Id; Device = None; Source = None; Bytes = 0L; EstSeconds = 0.0 }
        let linkLoad = Dictionary<(int * int), float>()
        let storageLoad = Dictionary<int, float>()
        let addLoad (d: Dictionary<'k, float>) key v = d[key] <- (match d.TryGetValue key with | true, x -> x | _ -> 0.0) + v
        let linkBw (src: int * int) (dst: int * int) =
            if fst src = fst dst then cluster.Nodes[fst dst].IntraLinkBytesPerSec * k.LinkEfficiency
            else cluster.InterLinkBytesPerSec * k.LinkEfficiency
        let shardBytes (c: ReplicaConfig) =
            match ReplicaCost.memory { k with MinKvTokens = 0L } model c with
            | Ok m -> m.WeightBytesPerGpu
            | Error _ -> model.WeightBytes / int64 c.Size
        // A device still holding a removed replica's shard takes the new one only with
        // SwitchMemoryHeadroom of its memory to spare; otherwise the copy waits for that replica
        // to stop. Steps are ordered for execution: copies onto free room, starts of replicas
        // that are complete, drains/KV moves/stops of removed replicas, deferred copies, the
        // remaining starts.
        let immediate = List<Step>()
        let deferred = List<Step>()
        let waiting = HashSet<string>()
        let occupant (dst: int * int) = removed |> Array.tryFind (fun o -> Array.contains dst o.Devices)
        for r in fresh do
            let bytes = shardBytes r.Config
            r.Devices |> Array.iteri (fun i dst ->
                let mustWait =
                    match occupant dst with
                    | Some o ->
                        let memory = float cluster.Nodes[fst dst].Gpu.MemoryBytes
                        float (shardBytes o.Config + bytes) > (1.0 - k.SwitchMemoryHeadroom) * memory
                    | None -> false
                let out = if mustWait then deferred else immediate
                if mustWait then waiting.Add r.Id |> ignore
                let stage, rank = position r.Config i
                let need = span stage r.Config.Pp, span rank r.Config.Tp
                // Pieces each current replica would send: (source device, bytes).
                let offers =
                    if reload then [||]
                    else
                        current |> Array.map (fun src ->
                            src.Devices
                            |> Array.mapi (fun j d ->
                                let s2, k2 = position src.Config j
                                let f = overlap (fst need) (span s2 src.Config.Pp) * overlap (snd need) (span k2 src.Config.Tp)
                                let share = f * float r.Config.Pp * float r.Config.Tp
                                d, int64 (Math.Round(share * float bytes)))
                            |> Array.filter (fun (_, b) -> b > 0L))
                let cost (pieces: ((int * int) * int64)[]) =
                    pieces |> Array.sumBy (fun (d, b) -> if d = dst then 0.0 else float b / linkBw d dst)
                match offers |> Array.filter (fun o -> o.Length > 0) |> Array.sortBy cost |> Array.tryHead with
                | Some pieces ->
                    for (src, b) in pieces do
                        let sec = if src = dst then 0.0 else float b / linkBw src dst
                        if src <> dst then
                            addLoad linkLoad src sec
                            addLoad linkLoad dst sec
                        out.Add { Kind = StepKind.CopyShard; Replica = r.Id; Device = Some dst; Source = Some src; Bytes = (if src = dst then 0L else b); EstSeconds = sec }
                | None ->
                    let sec = float bytes / storageBytesPerSec
                    addLoad storageLoad (fst dst) sec
                    out.Add { Kind = StepKind.LoadShard; Replica = r.Id; Device = Some dst; Source = None; Bytes = bytes; EstSeconds = sec })
        steps.AddRange immediate
        let ready = fresh |> Array.filter (fun r -> not (waiting.Contains r.Id))
        for r in ready do steps.Add { Kind = StepKind.Start; Replica = r.Id; Device = None; Source = None; Bytes = 0L; EstSeconds = 0.0 }
        for r in removed do
            steps.Add { Kind = StepKind.Drain; Replica = r.Id; Device = None; Source = None; Bytes = 0L; EstSeconds = 0.0 }
            let kvBytes =
                match ReplicaCost.memory k model r.Config with
                | Ok m -> int64 (float m.KvCapacityTokens * rho * longShare) * model.KvBytesPerToken
                | Error _ -> 0L
            // Long sequences move to a replica that already runs; with none, everything drains.
            if kvBytes > 0L && ready.Length > 0 then
                let dst = ready[0].Devices[0]
                let src = r.Devices[0]
                let sec = float kvBytes / linkBw src dst
                addLoad linkLoad src sec
                addLoad linkLoad dst sec
                steps.Add { Kind = StepKind.MoveKv; Replica = r.Id; Device = Some dst; Source = Some src; Bytes = kvBytes; EstSeconds = sec }
            steps.Add { Kind = StepKind.Stop; Replica = r.Id; Device = None; Source = None; Bytes = 0L; EstSeconds = 0.0 }
        steps.AddRange deferred
        for r in fresh do
            if waiting.Contains r.Id then steps.Add { Kind = StepKind.Start; Replica = r.Id; Device = None; Source = None; Bytes = 0L; EstSeconds = 0.0 }
        let busiest (d: Dictionary<'k, float>) = if d.Count = 0 then 0.0 else Seq.max d.Values
        { Steps = steps.ToArray()
          TotalBytes = steps |> Seq.sumBy (fun s -> s.Bytes)
          EstSeconds = max (busiest linkLoad) (busiest storageLoad) }

    /// The relative served-rate tolerance of a switch decision, widened to `sigmas` standard
    /// deviations of the window's request count: a forecast of rate r over a window of w seconds
    /// rests on about r * w requests, uncertain by sqrt(r * w), i.e. sqrt(r / w) requests/s. With
    /// half-second windows of a few long prompts, a clump of three arrivals made one plan look 20%
    /// short of the other and the controller switched for it (demo log); at r * w in the thousands
    /// the widening is negligible. `sigmas` <= 0 keeps `relative`.
    let servedTolerance (relative: float) (sigmas: float) (windowSec: float) (demandRate: float) (served: float) =
        if sigmas <= 0.0 || windowSec <= 0.0 || demandRate <= 0.0 || served <= 0.0 then relative
        else max relative (sigmas * sqrt (demandRate / windowSec) / served)

    /// The switch pays when the extra requests served over the window exceed those lost while the
    /// replaced replicas' capacity is offline (their served rate times the switch time). When both
    /// deployments serve the same (within `servedTolerance`, relative: 0.005 by default; larger
    /// where a window's forecast holds few requests and is that noisy), it pays only for a
    /// mean-latency gain above `latencyGain` (relative) with a switch shorter than
    /// `maxSwitchFraction` of the window.
    let decide (windowSec: float) (latencyGain: float) (maxSwitchFraction: float) (servedTolerance: float) (newServed: float, newLatency: float)
               (curServed: float, curLatency: float) (switchSec: float) (affectedRate: float) : SwitchVerdict =
        let gain = (newServed - curServed) * windowSec
        let lost = affectedRate * switchSec
        let sameServed = abs (newServed - curServed) <= servedTolerance * max 1e-9 (max newServed curServed)
        // A switch that moves no bytes (e.g. merging replicas whose shards are already in place)
        // still replaces replicas, so it must pay like any other, only with nothing lost to copies:
        // passing every such switch had the controller leave a plan for one it estimated slower
        // (demo: 2 x tp1 -> 1 x tp2 at mean latency 0.263 -> 0.326 s) and flap back a window later.
        if not sameServed && gain > lost then
            { Pays = true; GainRequests = gain; LostRequests = lost; Reason = sprintf "serves %.0f more requests over the window, loses %.0f while switching" gain lost }
        elif sameServed && curLatency > 0.0 && (curLatency - newLatency) / curLatency > latencyGain && switchSec < maxSwitchFraction * windowSec then
            { Pays = true; GainRequests = gain; LostRequests = lost; Reason = sprintf "mean latency %.3f s -> %.3f s" curLatency newLatency }
        else
            { Pays = false; GainRequests = gain; LostRequests = lost
              Reason = sprintf "gain %.0f requests vs %.0f lost; latency %.3f s -> %.3f s: keep the current plan" gain lost curLatency newLatency }
