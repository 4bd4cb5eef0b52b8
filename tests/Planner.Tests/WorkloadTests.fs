module OServe.Planner.Tests.WorkloadTests

open Expecto
open OServe.Planner.Workload
open TestPaths

let private errorsOf (r: Result<Trace, TraceError list>) =
    match r with
    | Ok t -> failtestf "expected errors, got %d requests" t.Requests.Length
    | Error es -> es

let private okOf (r: Result<Trace, TraceError list>) =
    match r with
    | Ok t -> t
    | Error es -> failtestf "unexpected errors: %A" (es |> List.map string)

let private hasError (es: TraceError list) (line: int) (field: string) (fragment: string) =
    Expect.isTrue
        (es |> List.exists (fun e -> e.Line = line && e.Field = field && e.Message.Contains fragment))
        (sprintf "expected an error at line %d field %s containing '%s'; got %A" line field fragment (es |> List.map string))

[<Tests>]
let readers =
    testList "Workload.readers" [
        test "Azure trace: arrivals relative to the first request, tokens kept" {
            let t = okOf (AzureTrace.read (fixture "azure_ok.csv"))
            Expect.equal t.Requests.Length 3 "rows"
            Expect.floatClose Accuracy.high t.Requests[1].Arrival 0.052 "second arrival"
            Expect.equal (t.Requests[0].InputTokens, t.Requests[0].OutputTokens) (4808, 10) "tokens"
        }
        test "Azure trace: every bad row is reported with line and column" {
            let es = errorsOf (AzureTrace.read (fixture "azure_bad.csv"))
            hasError es 3 "ContextTokens" "'abc'"
            hasError es 4 "row" "expected 3 fields, got 2"
            hasError es 5 "TIMESTAMP" "'yesterday'"
            Expect.stringContains (string es.Head) "azure_bad.csv:3" "file and line in the text"
        }
        test "BurstGPT: failed rows (0 response tokens) are dropped and counted" {
            let t = okOf (BurstGptTrace.read (fixture "burstgpt_ok.csv"))
            Expect.equal t.Requests.Length 2 "kept"
            Expect.equal t.NumDropped 2 "dropped"
            Expect.floatClose Accuracy.high t.Requests[1].Arrival 113.0 "relative arrival"
        }
        test "BurstGPT: negative tokens and inconsistent totals are errors" {
            let es = errorsOf (BurstGptTrace.read (fixture "burstgpt_bad.csv"))
            hasError es 3 "Response tokens" "must be >= 0"
            hasError es 4 "Total tokens" "differs"
        }
        test "BurstGPT: a missing column is named" {
            let es = errorsOf (BurstGptTrace.read (fixture "burstgpt_nocol.csv"))
            hasError es 1 "Response tokens" "missing column"
        }
        test "Mooncake JSONL: timestamps in ms become seconds; blank lines skipped" {
            let t = okOf (MooncakeTrace.read (fixture "mooncake_ok.jsonl"))
            Expect.equal t.Requests.Length 3 "rows"
            Expect.floatClose Accuracy.high t.Requests[2].Arrival 30.535 "seconds"
        }
        test "Mooncake JSONL: wrong type, missing field, bad JSON, bad hash_ids" {
            let es = errorsOf (MooncakeTrace.read (fixture "mooncake_bad.jsonl"))
            hasError es 2 "input_length" "expected a number"
            hasError es 3 "input_length" "missing field"
            hasError es 4 "json" "not valid JSON"
            hasError es 5 "hash_ids" "array"
        }
        test "a missing file is an error, not an exception" {
            let es = errorsOf (TraceReader.read "/nonexistent/trace.csv")
            hasError es 0 "file" "not found"
        }
        test "format detection by header" {
            Expect.equal (TraceReader.detect (fixture "azure_ok.csv")) (Ok TraceFormat.Azure) "azure"
            Expect.equal (TraceReader.detect (fixture "burstgpt_ok.csv")) (Ok TraceFormat.BurstGpt) "burstgpt"
            Expect.equal (TraceReader.detect (fixture "mooncake_ok.jsonl")) (Ok TraceFormat.Mooncake) "mooncake"
            Expect.isError (TraceReader.detect (fixture "profile_ok.yaml")) "unknown"
        }
        test "format detection reads the content, not the file name" {
            let json = """{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": []}"""
            Expect.equal (TraceReader.detectLine "a.csv" 1 json) (Ok TraceFormat.Mooncake) "JSON in a .csv"
            Expect.equal (TraceReader.detectLine "a.jsonl" 1 "TIMESTAMP,ContextTokens,GeneratedTokens") (Ok TraceFormat.Azure) "CSV in a .jsonl"
            match TraceReader.detectLine "a.jsonl" 3 """{"ts": 1}""" with
            | Error [ e ] ->
                Expect.equal (e.Line, e.Field) (3, "format") "where"
                Expect.stringContains e.Message "without input_length and output_length" "why"
            | other -> failtestf "expected one error, got %A" other
        }
        test "real Azure conv trace reads completely" {
            let path = sharedFile "traces/azure2023/AzureLLMInferenceTrace_conv.csv"
            let t = okOf (TraceReader.read path)
            Expect.equal t.Requests.Length 19366 "all rows (the file has no final newline)"
            Expect.isGreaterThan t.DurationSec 3000.0 "about an hour"
        }
    ]

[<Tests>]
let synthetic =
    testList "Workload.synthetic" [
        test "same seed, same trace; lengths match the published medians" {
            let a = SyntheticWorkload.generate SyntheticWorkload.defaults
            let b = SyntheticWorkload.generate SyntheticWorkload.defaults
            Expect.equal a.Requests b.Requests "deterministic"
            // conv alone: median input ~1020, median output ~129
            let conv = SyntheticWorkload.generate { SyntheticWorkload.defaults with Classes = [ SyntheticWorkload.azureConv ] }
            let median (xs: int[]) = (Array.sort xs)[xs.Length / 2] |> float
            Expect.floatClose { absolute = 0.0; relative = 0.08 } (median (conv.Requests |> Array.map (fun r -> r.InputTokens))) 1020.0 "input median"
            Expect.floatClose { absolute = 0.0; relative = 0.1 } (median (conv.Requests |> Array.map (fun r -> r.OutputTokens))) 129.0 "output median"
            let rate = float conv.Requests.Length / 3600.0
            Expect.floatClose { absolute = 0.0; relative = 0.05 } rate 5.5 "mean rate"
        }
        test "the mix shifts over time" {
            let t = SyntheticWorkload.generate SyntheticWorkload.defaults
            let longOutShare (reqs: Request[]) =
                float (reqs |> Array.filter (fun r -> r.OutputTokens > 60) |> Array.length) / float reqs.Length
            let early = Trace.slice 0.0 900.0 t
            let late = Trace.slice 900.0 1800.0 t
            Expect.isGreaterThan (abs (longOutShare early - longOutShare late)) 0.1 "share of long answers moves"
        }
    ]

[<Tests>]
let context =
    testList "Workload.context" [
        let reqs = [| { Arrival = 0.0; InputTokens = 100; OutputTokens = 50 }; { Arrival = 1.0; InputTokens = 5000; OutputTokens = 300 }
                      { Arrival = 2.0; InputTokens = 10; OutputTokens = 9000 } |]
        let trace = { Source = "t"; Requests = reqs; NumDropped = 0; DropReason = "" }
        test "clip keeps the output, cuts the prompt, and counts" {
            match ContextLimit.apply OServe.Contracts.OverContext.Clip 4096 trace with
            | Error e -> failtest e
            | Ok(t, r) ->
                Expect.equal r.NumOver 2 "two over"
                Expect.equal (t.Requests |> Array.map (fun q -> q.InputTokens, q.OutputTokens)) [| 100, 50; 3796, 300; 1, 4095 |] "clipped"
                Expect.stringContains (r.Describe()) "2 of 3 requests (66.7%) exceed the 4096-token context" "described"
        }
        test "drop leaves them out; refuse names the longest" {
            match ContextLimit.apply OServe.Contracts.OverContext.Drop 4096 trace with
            | Ok(t, r) -> Expect.equal (t.Requests.Length, r.NumOver) (1, 2) "one kept"
            | Error e -> failtest e
            match ContextLimit.apply OServe.Contracts.OverContext.Refuse 4096 trace with
            | Ok _ -> failtest "refused"
            | Error e -> Expect.stringContains e "the longest has 10 + 9000 tokens" "longest"
        }
    ]

[<Tests>]
let typing =
    testList "Workload.typing" [
        let trace = SyntheticWorkload.generate { SyntheticWorkload.defaults with DurationSec = 1200.0 }
        test "k-means typing is deterministic and ordered" {
            let a = RequestTyping.fit TypingOptions.Default trace.Requests
            let b = RequestTyping.fit TypingOptions.Default trace.Requests
            Expect.equal a b "same types"
            match a with
            | Ok types ->
                Expect.equal types.Length 4 "k = 4"
                Expect.floatClose Accuracy.medium (types |> Array.sumBy (fun t -> t.Share)) 1.0 "shares sum to 1"
                Expect.isTrue (types |> Array.pairwise |> Array.forall (fun (x, y) -> x.CentroidInputTokens <= y.CentroidInputTokens)) "sorted"
            | Error e -> failtest e
        }
        test "well separated clusters are found and live requests classified" {
            let reqs =
                [| for i in 0 .. 199 -> { Arrival = float i; InputTokens = 100 + i % 7; OutputTokens = 10 + i % 3 }
                   for i in 0 .. 199 -> { Arrival = float i; InputTokens = 4000 + i % 11; OutputTokens = 500 + i % 5 } |]
            match RequestTyping.fit { TypingOptions.Default with NumTypes = 2 } reqs with
            | Ok types ->
                Expect.floatClose { absolute = 5.0; relative = 0.0 } types[0].MeanInputTokens 103.0 "short type"
                Expect.equal (RequestTyping.classify types 3900 450) 1 "long request"
                Expect.equal (RequestTyping.classify types 90 12) 0 "short request"
                let series = RequestTyping.rateSeries types 50.0 reqs
                Expect.equal series.Length 2 "per type"
                Expect.floatClose Accuracy.high (series[0][0]) 1.0 "50 requests of each in the first 50 s"
            | Error e -> failtest e
        }
        test "too few requests for k types is an error" {
            Expect.isError (RequestTyping.fit TypingOptions.Default [| { Arrival = 0.0; InputTokens = 1; OutputTokens = 1 } |]) "error"
        }
    ]
