namespace OServe.Planner.Workload

open System
open OServe.Contracts

/// How a workload met the model's context: how many requests were longer (prompt + output tokens)
/// and what was done with them. IsOver has one flag per request of the trace as given.
type ContextReport =
    { MaxContextTokens: int
      Policy: OverContext
      NumRequests: int
      NumOver: int
      IsOver: bool[]
      /// The longest request (input, output tokens), over the context or not.
      Longest: int * int }

    member r.Action =
        match r.Policy with
        | OverContext.Drop -> "dropped"
        | OverContext.Refuse -> "refused"
        | _ -> "clipped to fit"

    /// One line for tables and logs, e.g. "412 of 8819 requests (4.7%) exceed the 4096-token context: clipped to fit".
    member r.Describe() =
        if r.NumOver = 0 then sprintf "all %d requests fit the %d-token context" r.NumRequests r.MaxContextTokens
        else
            sprintf "%d of %d requests (%.1f%%) exceed the %d-token context (prompt + output): %s" r.NumOver r.NumRequests
                (100.0 * float r.NumOver / float (max 1 r.NumRequests)) r.MaxContextTokens r.Action

/// Applies a model's context limit to a trace: over-long requests are clipped, dropped or refused,
/// and always counted, so no planner or simulator works on requests the model cannot hold
/// without the user being told.
[<RequireQualifiedAccess>]
module ContextLimit =
    let fits (maxContext: int) (r: Request) = int64 r.InputTokens + int64 r.OutputTokens <= int64 maxContext

    /// The output keeps up to maxContext - 1 tokens, the prompt what is left (at least 1): the same
    /// rule the simulator has always applied.
    let clip (maxContext: int) (r: Request) : Request =
        let output = Math.Clamp(r.OutputTokens, 1, max 1 (maxContext - 1))
        let input = Math.Clamp(r.InputTokens, 1, max 1 (maxContext - output))
        { r with InputTokens = input; OutputTokens = output }

    let report (policy: OverContext) (maxContext: int) (requests: Request[]) : ContextReport =
        let over = requests |> Array.map (fits maxContext >> not)
        let longest =
            if requests.Length = 0 then 0, 0
            else
                let r = requests |> Array.maxBy (fun r -> int64 r.InputTokens + int64 r.OutputTokens)
                r.InputTokens, r.OutputTokens
        { MaxContextTokens = maxContext; Policy = policy; NumRequests = requests.Length
          NumOver = over |> Array.sumBy (fun b -> if b then 1 else 0); IsOver = over; Longest = longest }

    /// The trace the planners and the simulator see, with the report; Error when the policy is
    /// Refuse and some request is over the context.
    let apply (policy: OverContext) (maxContext: int) (trace: Trace) : Result<Trace * ContextReport, string> =
        if maxContext < 2 then Error(sprintf "a context of %d tokens holds no prompt and output" maxContext)
        else
            let rep = report policy maxContext trace.Requests
            if rep.NumOver = 0 then Ok(trace, rep)
            else
                match policy with
                | OverContext.Refuse ->
                    let i, o = rep.Longest
                    Error(sprintf "%d of %d requests exceed the model's %d-token context (prompt + output; the longest has %d + %d tokens): refused by --over-context refuse (clip shortens them, drop leaves them out)"
                              rep.NumOver rep.NumRequests maxContext i o)
                | OverContext.Drop ->
                    let kept = trace.Requests |> Array.indexed |> Array.filter (fun (k, _) -> not rep.IsOver[k]) |> Array.map snd
                    Ok({ trace with Requests = kept }, rep)
                | _ -> Ok({ trace with Requests = trace.Requests |> Array.map (fun r -> if fits maxContext r then r else clip maxContext r) }, rep)
