namespace OServe.Planner.Planning

open System.IO
open OServe.Contracts
open OServe.Planner.Workload

/// Turns a Contracts Workload into a trace: the trace file when it exists, else the synthetic spec
/// (so every scenario runs without ../shared).
[<RequireQualifiedAccess>]
module WorkloadSource =
    let private profile (p: LengthProfile) =
        if p = LengthProfile.AzureCode then SyntheticWorkload.azureCode else SyntheticWorkload.azureConv

    let synthetic (s: SyntheticSpec) : Trace =
        SyntheticWorkload.generate
            { Classes =
                s.Components
                |> Seq.map (fun c ->
                    { profile c.Profile with
                        BaseRate = c.RateRps; Amplitude = c.Amplitude; PeriodSec = c.PeriodS; PhaseSec = c.PhaseS; TrendPerHour = 0.0 })
                |> List.ofSeq
              DurationSec = s.DurationS
              MaxContextTokens = SyntheticWorkload.defaults.MaxContextTokens
              Seed = s.Seed }

    let private format (f: OServe.Contracts.TraceFormat) =
        match f with
        | OServe.Contracts.TraceFormat.BurstGpt -> OServe.Planner.Workload.TraceFormat.BurstGpt
        | OServe.Contracts.TraceFormat.Mooncake -> OServe.Planner.Workload.TraceFormat.Mooncake
        | _ -> OServe.Planner.Workload.TraceFormat.Azure

    /// The Contracts format of a trace file, detected from its content (TraceReader.detect).
    let detectFormat (path: string) : Result<OServe.Contracts.TraceFormat, string list> =
        match TraceReader.detect path with
        | Ok OServe.Planner.Workload.TraceFormat.BurstGpt -> Ok OServe.Contracts.TraceFormat.BurstGpt
        | Ok OServe.Planner.Workload.TraceFormat.Mooncake -> Ok OServe.Contracts.TraceFormat.Mooncake
        | Ok _ -> Ok OServe.Contracts.TraceFormat.Azure
        | Error es -> Error(es |> List.map string)

    /// Applies TimeScale, StartS and DurationS of a trace reference.
    let window (t: TraceRef) (trace: Trace) : Trace =
        let scaled = trace.Requests |> Array.map (fun r -> { r with Arrival = r.Arrival * t.TimeScale })
        let stop = if t.DurationS.HasValue then t.StartS + t.DurationS.Value else System.Double.MaxValue
        let kept = scaled |> Array.filter (fun r -> r.Arrival >= t.StartS && r.Arrival < stop)
        Trace.ofRawArrivals trace.Source trace.NumDropped trace.DropReason kept

    /// `relativeTo` is the folder of the file that names the trace (a scenario's folder).
    let load (w: OServe.Contracts.Workload) (relativeTo: string) : Result<Trace, string list> =
        let fromFile =
            match w.Trace with
            | null -> None
            | t ->
                let path = if Path.IsPathRooted t.Path then t.Path else Path.GetFullPath(Path.Combine(relativeTo, t.Path))
                if File.Exists path then
                    Some(TraceReader.readAs (format t.Format) path |> Result.map (window t) |> Result.mapError (List.map string))
                else None
        match fromFile with
        | Some r -> r
        | None ->
            match w.Synthetic with
            | null ->
                let what = match w.Trace with | null -> "there is no trace" | t -> sprintf "the trace file %s is missing" t.Path
                Error [ sprintf "workload '%s': %s and there is no synthetic fallback" w.Name what ]
            | s -> Ok(synthetic s)
