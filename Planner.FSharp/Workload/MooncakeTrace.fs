namespace OServe.Planner.Workload

open System
open System.Text.Json

/// Mooncake JSONL: one object per line, {"timestamp": ms, "input_length": n, "output_length": n,
/// "hash_ids": [...]}. hash_ids (prefix-cache block ids) are checked for shape but not kept.
[<RequireQualifiedAccess>]
module MooncakeTrace =
    let private intField (file: string) (line: int) (root: JsonElement) (name: string) : Result<int64, TraceError> =
        match root.TryGetProperty name with
        | true, v when v.ValueKind = JsonValueKind.Number ->
            match v.TryGetInt64() with
            | true, n when n >= 0L -> Ok n
            | _ -> Error { File = file; Line = line; Field = name; Message = sprintf "expected a non-negative integer, got %s" (v.GetRawText()) }
        | true, v -> Error { File = file; Line = line; Field = name; Message = sprintf "expected a number, got %s" (v.GetRawText()) }
        | _ -> Error { File = file; Line = line; Field = name; Message = "missing field" }

    let private row (file: string) (line: int) (text: string) : Result<Request, TraceError> =
        let doc =
            try Ok(JsonDocument.Parse text)
            with ex -> Error { File = file; Line = line; Field = "json"; Message = sprintf "not valid JSON: %s" ex.Message }
        doc
        |> Result.bind (fun doc ->
            use doc = doc
            let root = doc.RootElement
            if root.ValueKind <> JsonValueKind.Object then
                Error { File = file; Line = line; Field = "json"; Message = "expected one JSON object per line" }
            else
                let hashOk =
                    match root.TryGetProperty "hash_ids" with
                    | true, v when v.ValueKind <> JsonValueKind.Array ->
                        Error { File = file; Line = line; Field = "hash_ids"; Message = "expected an array of block ids" }
                    | _ -> Ok()
                match intField file line root "timestamp", intField file line root "input_length",
                      intField file line root "output_length", hashOk with
                | Ok t, Ok i, Ok o, Ok() when i <= int64 Int32.MaxValue && o <= int64 Int32.MaxValue ->
                    Ok { Arrival = float t / 1000.0; InputTokens = int i; OutputTokens = int o }
                | Ok _, Ok _, Ok _, Ok() ->
                    Error { File = file; Line = line; Field = "input_length"; Message = "token count out of range" }
                | Error e, _, _, _ | _, Error e, _, _ | _, _, Error e, _ | _, _, _, Error e -> Error e)

    let parse (file: string) (lines: string[]) : Result<Trace, TraceError list> =
        lines
        |> Seq.indexed
        |> Seq.filter (fun (_, l) -> not (String.IsNullOrWhiteSpace l))
        |> Seq.map (fun (i, l) -> row file (i + 1) l)
        |> RowParse.collect
        |> Result.map (Trace.ofRawArrivals file 0 "")

    let read (path: string) : Result<Trace, TraceError list> =
        RowParse.readLines path |> Result.mapError List.singleton |> Result.bind (parse path)
