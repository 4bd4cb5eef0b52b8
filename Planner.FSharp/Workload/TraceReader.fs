namespace OServe.Planner.Workload

open System
open System.IO

type TraceFormat =
    | Azure = 0
    | BurstGpt = 1
    | Mooncake = 2

/// Picks a reader from the file's extension and header line.
[<RequireQualifiedAccess>]
module TraceReader =
    let detect (path: string) : Result<TraceFormat, TraceError list> =
        let ext = match Path.GetExtension path with | null -> "" | e -> e.ToLowerInvariant()
        if ext = ".jsonl" || ext = ".json" then Ok TraceFormat.Mooncake
        elif not (File.Exists path) then Error [ { File = path; Line = 0; Field = "file"; Message = "file not found" } ]
        else
            let first = File.ReadLines path |> Seq.tryHead |> Option.defaultValue ""
            let h = first.Replace(" ", "").ToLowerInvariant()
            if h.StartsWith "{" then Ok TraceFormat.Mooncake
            elif h.Contains "contexttokens" && h.Contains "generatedtokens" then Ok TraceFormat.Azure
            elif h.Contains "requesttokens" && h.Contains "responsetokens" then Ok TraceFormat.BurstGpt
            else
                Error [ { File = path; Line = 1; Field = "header"
                          Message = sprintf "unknown trace format (header '%s'): expected Azure (TIMESTAMP,ContextTokens,GeneratedTokens), BurstGPT (Timestamp,Model,Request tokens,...) or Mooncake JSONL" first } ]

    let readAs (format: TraceFormat) (path: string) : Result<Trace, TraceError list> =
        match format with
        | TraceFormat.Azure -> AzureTrace.read path
        | TraceFormat.BurstGpt -> BurstGptTrace.read path
        | _ -> MooncakeTrace.read path

    let read (path: string) : Result<Trace, TraceError list> =
        detect path |> Result.bind (fun f -> readAs f path)
