namespace OServe.Planner.Workload

open System

/// BurstGPT CSV: Timestamp (s from trace start),Model,Request tokens,Response tokens,Total tokens,
/// Log Type[,Session ID][,Elapsed time]. Rows with 0 response tokens are failed requests: they are
/// dropped and counted (Trace.NumDropped), not treated as errors.
[<RequireQualifiedAccess>]
module BurstGptTrace =
    let dropReason = "failed requests (0 response tokens)"

    let parse (file: string) (lines: string[]) : Result<Trace, TraceError list> =
        if lines.Length = 0 || String.IsNullOrWhiteSpace lines[0] then
            Error [ { File = file; Line = 1; Field = "header"
                      Message = "empty file: expected header Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type" } ]
        else
            let header = RowParse.splitCsv lines[0]
            let required = [ "Timestamp"; "Model"; "Request tokens"; "Response tokens"; "Total tokens"; "Log Type" ]
            let cols = required |> List.map (RowParse.column file header)
            match cols |> List.choose (function Error e -> Some e | Ok _ -> None) with
            | _ :: _ as errs -> Error errs
            | [] ->
                let idx = cols |> List.map (function Ok i -> i | Error _ -> -1) |> Array.ofList
                let ti, ri, si, toti = idx[0], idx[2], idx[3], idx[4]
                let row (index: int) (text: string) : Result<Request option, TraceError> =
                    let line = index + 1
                    let f = RowParse.splitCsv text
                    if f.Length < 6 || f.Length > header.Length then
                        Error { File = file; Line = line; Field = "row"
                                Message = sprintf "expected %d fields, got %d" header.Length f.Length }
                    else
                        match RowParse.seconds file line "Timestamp" f[ti],
                              RowParse.tokenCount file line "Request tokens" f[ri],
                              RowParse.tokenCount file line "Response tokens" f[si],
                              RowParse.tokenCount file line "Total tokens" f[toti] with
                        | Ok t, Ok i, Ok o, Ok total ->
                            if total <> i + o then
                                Error { File = file; Line = line; Field = "Total tokens"
                                        Message = sprintf "Total tokens %d differs from Request tokens + Response tokens = %d" total (i + o) }
                            elif o = 0 then Ok None
                            else Ok(Some { Arrival = t; InputTokens = i; OutputTokens = o })
                        | Error e, _, _, _ | _, Error e, _, _ | _, _, Error e, _ | _, _, _, Error e -> Error e
                lines
                |> Seq.indexed
                |> Seq.skip 1
                |> Seq.filter (fun (_, l) -> not (String.IsNullOrWhiteSpace l))
                |> Seq.map (fun (i, l) -> row i l)
                |> RowParse.collect
                |> Result.map (fun rows ->
                    let kept = rows |> Array.choose id
                    Trace.ofRawArrivals file (rows.Length - kept.Length) dropReason kept)

    let read (path: string) : Result<Trace, TraceError list> =
        RowParse.readLines path |> Result.mapError List.singleton |> Result.bind (parse path)
