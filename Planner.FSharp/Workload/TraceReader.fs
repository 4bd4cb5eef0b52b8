namespace OServe.Planner.Workload

open System
open System.IO

type TraceFormat =
    | Azure = 0
    | BurstGpt = 1
    | Mooncake = 2

/// Picks a reader from the file's content: its first non-blank line (a CSV header or a JSON object),
/// never its name, so a trace renamed or given with another extension still reads.
[<RequireQualifiedAccess>]
module TraceReader =
    let private expected =
        "expected an Azure CSV header (TIMESTAMP,ContextTokens,GeneratedTokens), a BurstGPT CSV header "
        + "(Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type) or Mooncake JSONL "
        + "(one object per line with timestamp, input_length, output_length)"

    /// The format of a trace given its first non-blank line (1-based line number for messages).
    let detectLine (file: string) (lineNo: int) (first: string) : Result<TraceFormat, TraceError list> =
        let h = first.Replace(" ", "").Replace("_", "").ToLowerInvariant()
        let shown = if first.Length > 80 then first.Substring(0, 77) + "..." else first
        if h.StartsWith "{" then
            if h.Contains "\"inputlength\"" && h.Contains "\"outputlength\"" then Ok TraceFormat.Mooncake
            else Error [ { File = file; Line = lineNo; Field = "format"; Message = sprintf "a JSON line without input_length and output_length ('%s'): %s" shown expected } ]
        elif h.Contains "contexttokens" && h.Contains "generatedtokens" then Ok TraceFormat.Azure
        elif h.Contains "requesttokens" && h.Contains "responsetokens" then Ok TraceFormat.BurstGpt
        else Error [ { File = file; Line = lineNo; Field = "format"; Message = sprintf "cannot tell the trace format from '%s': %s" shown expected } ]

    let detect (path: string) : Result<TraceFormat, TraceError list> =
        if not (File.Exists path) then Error [ { File = path; Line = 0; Field = "file"; Message = "file not found" } ]
        else
            try
                match File.ReadLines path |> Seq.indexed |> Seq.tryFind (fun (_, l) -> not (String.IsNullOrWhiteSpace l)) with
                | None -> Error [ { File = path; Line = 1; Field = "format"; Message = "the file is empty: " + expected } ]
                | Some(i, line) -> detectLine path (i + 1) line
            with :? IOException | :? UnauthorizedAccessException as e ->
                Error [ { File = path; Line = 0; Field = "file"; Message = e.Message } ]

    let readAs (format: TraceFormat) (path: string) : Result<Trace, TraceError list> =
        match format with
        | TraceFormat.Azure -> AzureTrace.read path
        | TraceFormat.BurstGpt -> BurstGptTrace.read path
        | _ -> MooncakeTrace.read path

    let read (path: string) : Result<Trace, TraceError list> =
        detect path |> Result.bind (fun f -> readAs f path)
