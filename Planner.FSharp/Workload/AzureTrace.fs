namespace OServe.Planner.Workload

open System

/// Azure LLM inference traces (2023 and 2024 share the schema): TIMESTAMP,ContextTokens,GeneratedTokens
/// with wall-clock timestamps such as `2023-11-16 18:17:03.9799600`.
[<RequireQualifiedAccess>]
module AzureTrace =
    let private formats =
        [| "yyyy-MM-dd HH:mm:ss.FFFFFFF"; "yyyy-MM-dd HH:mm:ss"; "yyyy-MM-ddTHH:mm:ss.FFFFFFF"
           "yyyy-MM-dd HH:mm:ss.FFFFFFFzzz"; "yyyy-MM-ddTHH:mm:ss.FFFFFFFzzz"; "yyyy-MM-ddTHH:mm:ss.FFFFFFFK" |]

    /// UTC ticks (100 ns); kept integral until made relative so sub-microsecond stamps survive.
    let private parseTimestamp (file: string) (line: int) (text: string) : Result<int64, TraceError> =
        let styles = Globalization.DateTimeStyles.AdjustToUniversal ||| Globalization.DateTimeStyles.AssumeUniversal
        match DateTimeOffset.TryParseExact(text, formats, RowParse.inv, styles) with
        | true, t -> Ok t.UtcTicks
        | _ ->
            Error { File = file; Line = line; Field = "TIMESTAMP"
                    Message = sprintf "expected a timestamp like '2023-11-16 18:17:03.9799600', got '%s'" text }

    /// Parses the text of an Azure trace; `file` names it in error messages.
    let parse (file: string) (lines: string[]) : Result<Trace, TraceError list> =
        if lines.Length = 0 || String.IsNullOrWhiteSpace lines[0] then
            Error [ { File = file; Line = 1; Field = "header"; Message = "empty file: expected header TIMESTAMP,ContextTokens,GeneratedTokens" } ]
        else
            let header = RowParse.splitCsv lines[0]
            match RowParse.column file header "TIMESTAMP", RowParse.column file header "ContextTokens",
                  RowParse.column file header "GeneratedTokens" with
            | Ok ti, Ok ci, Ok gi ->
                let row (index: int) (text: string) : Result<struct (int64 * int * int), TraceError> =
                    let line = index + 1
                    let f = RowParse.splitCsv text
                    if f.Length <> header.Length then
                        Error { File = file; Line = line; Field = "row"
                                Message = sprintf "expected %d fields, got %d" header.Length f.Length }
                    else
                        match parseTimestamp file line f[ti],
                              RowParse.tokenCount file line "ContextTokens" f[ci],
                              RowParse.tokenCount file line "GeneratedTokens" f[gi] with
                        | Ok t, Ok i, Ok o -> Ok(struct (t, i, o))
                        | Error e, _, _ | _, Error e, _ | _, _, Error e -> Error e
                lines
                |> Seq.indexed
                |> Seq.skip 1
                |> Seq.filter (fun (_, l) -> not (String.IsNullOrWhiteSpace l))
                |> Seq.map (fun (i, l) -> row i l)
                |> RowParse.collect
                |> Result.map (fun rows ->
                    let t0 = if rows.Length = 0 then 0L else rows |> Array.map (fun (struct (t, _, _)) -> t) |> Array.min
                    rows
                    |> Array.map (fun (struct (t, i, o)) ->
                        { Arrival = float (t - t0) / float TimeSpan.TicksPerSecond; InputTokens = i; OutputTokens = o })
                    |> Trace.ofRawArrivals file 0 "")
            | r1, r2, r3 ->
                Error([ r1; r2; r3 ] |> List.choose (function Error e -> Some e | Ok _ -> None))

    let read (path: string) : Result<Trace, TraceError list> =
        RowParse.readLines path |> Result.mapError List.singleton |> Result.bind (parse path)
