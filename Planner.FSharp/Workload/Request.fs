namespace OServe.Planner.Workload

open System

/// One request of a trace. Arrival is in seconds since the trace's first request, so traces from
/// different sources (wall-clock timestamps, relative seconds, milliseconds) line up the same way.
[<Struct>]
type Request =
    { Arrival: float
      InputTokens: int
      OutputTokens: int }

/// A malformed row: where it is (file, 1-based line, column or field name) and what is wrong.
type TraceError =
    { File: string
      Line: int
      Field: string
      Message: string }

    override this.ToString() =
        if this.Line > 0 then sprintf "%s:%d: %s: %s" this.File this.Line this.Field this.Message
        else sprintf "%s: %s: %s" this.File this.Field this.Message

/// A trace read from a file: requests sorted by arrival, plus rows dropped on purpose (not errors).
type Trace =
    { Source: string
      Requests: Request[]
      NumDropped: int
      DropReason: string }

    member this.DurationSec =
        if this.Requests.Length = 0 then 0.0 else this.Requests[this.Requests.Length - 1].Arrival

[<RequireQualifiedAccess>]
module Trace =
    /// Sorts by arrival (stable) and shifts arrivals so the first request arrives at 0 s.
    let ofRawArrivals (source: string) (numDropped: int) (dropReason: string) (rows: Request seq) : Trace =
        let sorted = rows |> Seq.sortBy (fun r -> r.Arrival) |> Seq.toArray
        let t0 = if sorted.Length = 0 then 0.0 else sorted[0].Arrival
        { Source = source
          Requests = sorted |> Array.map (fun r -> { r with Arrival = r.Arrival - t0 })
          NumDropped = numDropped
          DropReason = dropReason }

    /// Requests whose arrival lies in [fromSec, toSec).
    let slice (fromSec: float) (toSec: float) (trace: Trace) : Request[] =
        trace.Requests |> Array.filter (fun r -> r.Arrival >= fromSec && r.Arrival < toSec)

/// Helpers shared by the line-oriented readers.
[<RequireQualifiedAccess>]
module internal RowParse =
    let inv = Globalization.CultureInfo.InvariantCulture

    /// Splits one CSV line; honours double-quoted fields (with "" as an escaped quote).
    let splitCsv (line: string) : string[] =
        if not (line.Contains '"') then line.Split(',') |> Array.map (fun s -> s.Trim())
        else
            let fields = Collections.Generic.List<string>()
            let sb = Text.StringBuilder()
            let mutable inQuotes = false
            let mutable i = 0
            while i < line.Length do
                let c = line[i]
                if inQuotes then
                    if c = '"' && i + 1 < line.Length && line[i + 1] = '"' then
                        sb.Append('"') |> ignore
                        i <- i + 1
                    elif c = '"' then inQuotes <- false
                    else sb.Append(c) |> ignore
                elif c = '"' then inQuotes <- true
                elif c = ',' then
                    fields.Add(sb.ToString().Trim())
                    sb.Clear() |> ignore
                else sb.Append(c) |> ignore
                i <- i + 1
            fields.Add(sb.ToString().Trim())
            fields.ToArray()

    let tokenCount (file: string) (line: int) (field: string) (text: string) : Result<int, TraceError> =
        match Int64.TryParse(text, Globalization.NumberStyles.Integer, inv) with
        | true, v when v < 0L ->
            Error { File = file; Line = line; Field = field; Message = sprintf "token count must be >= 0, got %d" v }
        | true, v when v > int64 Int32.MaxValue ->
            Error { File = file; Line = line; Field = field; Message = sprintf "token count %d is out of range" v }
        | true, v -> Ok(int v)
        | _ ->
            // Some exports write integral counts as "12.0"; accept those, refuse real fractions.
            match Double.TryParse(text, Globalization.NumberStyles.Float, inv) with
            | true, d when d >= 0.0 && d = Math.Floor d && d <= float Int32.MaxValue -> Ok(int d)
            | _ ->
                Error { File = file; Line = line; Field = field
                        Message = sprintf "expected a non-negative integer token count, got '%s'" text }

    let seconds (file: string) (line: int) (field: string) (text: string) : Result<float, TraceError> =
        match Double.TryParse(text, Globalization.NumberStyles.Float, inv) with
        | true, v when Double.IsFinite v && v >= 0.0 -> Ok v
        | _ ->
            Error { File = file; Line = line; Field = field
                    Message = sprintf "expected a non-negative number, got '%s'" text }

    /// Reads all lines, keeping 1-based line numbers; a missing file is an error, not an exception.
    let readLines (path: string) : Result<string[], TraceError> =
        if not (IO.File.Exists path) then
            Error { File = path; Line = 0; Field = "file"; Message = "file not found" }
        else
            try Ok(IO.File.ReadAllLines path)
            with ex -> Error { File = path; Line = 0; Field = "file"; Message = ex.Message }

    /// Column index of a header name (case- and space-insensitive), or an error naming the header.
    let column (file: string) (header: string[]) (name: string) : Result<int, TraceError> =
        let norm (s: string) = s.Replace(" ", "").Replace("_", "").ToLowerInvariant()
        match header |> Array.tryFindIndex (fun h -> norm h = norm name) with
        | Some i -> Ok i
        | None ->
            Error { File = file; Line = 1; Field = name
                    Message = sprintf "missing column '%s' in header '%s'" name (String.Join(",", header)) }

    /// Collects row results: all errors if any row failed (capped so a bad file stays readable).
    let collect (rows: Result<'a, TraceError> seq) : Result<'a[], TraceError list> =
        let oks = Collections.Generic.List<'a>()
        let errs = Collections.Generic.List<TraceError>()
        for r in rows do
            match r with
            | Ok v -> oks.Add v
            | Error e -> if errs.Count < 20 then errs.Add e
        if errs.Count = 0 then Ok(oks.ToArray()) else Error(List.ofSeq errs)
