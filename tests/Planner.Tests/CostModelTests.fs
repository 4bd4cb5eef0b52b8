module OServe.Planner.Tests.CostModelTests

open Expecto
open OServe.Planner.CostModel
open TestPaths

/// A tiny model whose sizes are easy to check by hand.
let tinyModel = ModelSpec.Llama("tiny", 4, 64, 128, 4, 2, 100, 2, 256)

// Per layer: q 64*64 + k,v 2*64*32 + o 64*64 + MLP 3*64*128 + norms 2*64 = 36992 params.
// Total: 4 layers + embedding and LM head 2*100*64 + final norm 64 = 160832 params = 321664 bytes.
let tinyWeightBytes = 321664L
// K and V: 2 * 4 layers * 2 KV heads * 16 * 2 bytes = 512 bytes per token.
let tinyKvPerToken = 512L

let exactCoefficients =
    { CostCoefficients.defaults with MemoryUtilization = 1.0; WorkspaceBytes = 1000L; MinKvTokens = 10L }

let gpuWith (bytes: int64) = { Hardware.h100 with Name = "g"; MemoryBytes = bytes }
let config gpu tp pp = { Gpu = gpu; Tp = tp; Pp = pp; CrossNode = false }
let links = Links.Default(450e9, 50e9)

[<Tests>]
let tests =
    testList "CostModel" [
        test "pipeline stages never make a lone request faster: one sequence cannot overlap stages, PP adds sends" {
            let m = Hardware.llama2_70b
            for tp in [ 4; 8 ] do
                let one = { Gpu = Hardware.h100; Tp = tp; Pp = 1; CrossNode = false }
                for pp, cross in [ 2, false; 2, true; 4, true ] do
                    let deep = { one with Pp = pp; CrossNode = cross }
                    let est c =
                        let mem = ReplicaCost.memory CostCoefficients.defaults m c |> Result.defaultWith failwith
                        ReplicaCost.estimate CostCoefficients.defaults m links c mem 1000.0 400.0 0.001
                    let a, b = est one, est deep
                    Expect.isGreaterThanOrEqual b.TtftSec a.TtftSec (sprintf "TTFT tp%d pp%d" tp pp)
                    Expect.isGreaterThanOrEqual b.TpotSec a.TpotSec (sprintf "TPOT tp%d pp%d" tp pp)
                    Expect.isGreaterThanOrEqual b.E2eSec a.E2eSec (sprintf "E2E tp%d pp%d" tp pp)
                    Expect.isGreaterThanOrEqual (ReplicaCost.decodeCycleSec CostCoefficients.defaults m links deep 1.0 4000.0)
                                                (ReplicaCost.decodeCycleSec CostCoefficients.defaults m links one 1.0 4000.0) (sprintf "batch-1 cycle tp%d pp%d" tp pp)
        }
        test "hand-computed sizes of the tiny model" {
            Expect.equal tinyModel.WeightBytes tinyWeightBytes "weights"
            Expect.equal tinyModel.KvBytesPerToken tinyKvPerToken "KV bytes per token"
        }
        test "exactly fits: weights + workspace + MinKvTokens of KV" {
            let need = tinyWeightBytes + 1000L + 10L * tinyKvPerToken
            match ReplicaCost.memory exactCoefficients tinyModel (config (gpuWith need) 1 1) with
            | Ok m -> Expect.equal m.KvCapacityTokens 10L "exactly the minimum KV"
            | Error e -> failtest e
        }
        test "one byte short does not fit, and says why" {
            let need = tinyWeightBytes + 1000L + 10L * tinyKvPerToken
            match ReplicaCost.memory exactCoefficients tinyModel (config (gpuWith (need - 1L)) 1 1) with
            | Ok _ -> failtest "must not fit"
            | Error e -> Expect.stringContains e "does not fit" "reason"
        }
        test "TP not dividing the heads is infeasible" {
            match ReplicaCost.memory exactCoefficients tinyModel (config Hardware.h100 3 1) with
            | Ok _ -> failtest "TP 3 over 4 heads"
            | Error e -> Expect.stringContains e "does not divide the 4 attention heads" "reason"
        }
        test "TP beyond the KV heads replicates them (KV per GPU stays one head)" {
            match ReplicaCost.memory exactCoefficients tinyModel (config Hardware.h100 4 1) with
            | Ok m -> Expect.equal m.KvBytesPerTokenPerGpu (2L * 4L * 1L * 16L * 2L) "one KV head per GPU"
            | Error e -> failtest e
        }
        test "PP beyond the layers is infeasible; PP = layers is fine" {
            Expect.isError (ReplicaCost.memory exactCoefficients tinyModel (config Hardware.h100 1 5)) "PP 5 > 4 layers"
            Expect.isOk (ReplicaCost.memory exactCoefficients tinyModel (config Hardware.h100 1 4)) "PP 4"
        }
        test "TP and PP split weights and KV" {
            let m1 = ReplicaCost.memory exactCoefficients tinyModel (config Hardware.h100 1 1) |> Result.defaultWith failtest
            let m2 = ReplicaCost.memory exactCoefficients tinyModel (config Hardware.h100 2 2) |> Result.defaultWith failtest
            Expect.equal m2.KvBytesPerTokenPerGpu (m1.KvBytesPerTokenPerGpu / 4L) "KV split by TP*PP"
            Expect.isLessThan m2.WeightBytesPerGpu (m1.WeightBytesPerGpu / 2L) "weights split"
        }
        test "Llama-2-70B needs at least 2 H100s; TP=2 fits with KV room" {
            let k = CostCoefficients.defaults
            Expect.isError (ReplicaCost.memory k Hardware.llama2_70b (config Hardware.h100 1 1)) "TP1"
            let m = ReplicaCost.memory k Hardware.llama2_70b (config Hardware.h100 2 1) |> Result.defaultWith failtest
            Expect.isGreaterThan m.KvCapacityTokens 4096L "KV"
        }
        test "rates: more TP serves more per replica; short answers are served faster than long ones" {
            let k = CostCoefficients.defaults
            let est tp i o =
                let c = config Hardware.h100 tp 1
                let m = ReplicaCost.memory k Hardware.llama2_70b c |> Result.defaultWith failtest
                ReplicaCost.estimate k Hardware.llama2_70b links c m i o 0.85
            let e2 = est 2 1000.0 200.0
            let e8 = est 8 1000.0 200.0
            Expect.isGreaterThan e8.Rate e2.Rate "TP8 > TP2 per replica"
            let cycle tp = ReplicaCost.decodeCycleSec k Hardware.llama2_70b links (config Hardware.h100 tp 1) 32.0 1100.0
            Expect.isLessThan (cycle 8) (cycle 2) "same batch: faster tokens with more TP"
            Expect.isGreaterThan (est 4 1000.0 20.0).Rate (est 4 1000.0 400.0).Rate "short outputs"
            Expect.isTrue (e2.TpotSec > 0.005 && e2.TpotSec < 0.5) (sprintf "plausible TPOT %g" e2.TpotSec)
        }
        test "latency under load: the batch running is what Little's law says, and TPOT grows with load" {
            let k = CostCoefficients.defaults
            let c = config Hardware.h100 2 1
            let mem = ReplicaCost.memory k Hardware.llama2_70b c |> Result.defaultWith failtest
            let i, o = 1000.0, 200.0
            let est rho = ReplicaCost.estimate k Hardware.llama2_70b links c mem i o rho
            let batch = float (est 0.5).BatchSize
            let step = StepTimeModel(k, Hardware.llama2_70b, links, c)
            let mixed prefills decodes =
                let p = StepShape.Prefill(prefills, i)
                let d = StepShape.Decode(decodes, i + o / 2.0)
                step.Seconds { p with NumDecodes = d.NumDecodes; DecodeContextTokens = d.DecodeContextTokens }
            for rho in [ 0.1; 0.5; 0.9 ] do
                let e = est rho
                let lambda = rho * e.Rate
                // N = lambda * output * TPOT sequences run, and TPOT is the step of N decodes beside
                // the prompts that arrived during one step: the estimate is that fixed point.
                let running = min batch (max 1.0 (lambda * o * e.TpotSec))
                Expect.floatClose { absolute = 0.0; relative = 1e-6 } e.TpotSec (mixed (lambda * e.TpotSec) running) (sprintf "fixed point at rho %.1f" rho)
            Expect.isLessThan (est 0.1).TpotSec (est 0.5).TpotSec "TPOT grows with load"
            Expect.isLessThan (est 0.5).TpotSec (est 0.9).TpotSec "and more near saturation"
            // At rho 0.5 fewer than half the batch run when each step costs more with every sequence.
            Expect.isLessThanOrEqual (0.5 * (est 0.5).Rate * o * (est 0.5).TpotSec) (0.5 * batch) "N <= rho B"
        }
        test "a request longer than the KV capacity gets rate 0" {
            let k = { exactCoefficients with MaxNumSeqs = 8 }
            let c = config (gpuWith (tinyWeightBytes + 1000L + 10L * tinyKvPerToken)) 1 1
            let m = ReplicaCost.memory k tinyModel c |> Result.defaultWith failtest
            Expect.equal (ReplicaCost.estimate k tinyModel links c m 8.0 4.0 0.5).Rate 0.0 "12 tokens > 10"
        }
        test "profile files replace defaults (YAML and JSON)" {
            let y = CostCoefficients.load (fixture "profile_ok.yaml") |> Result.defaultWith (fun e -> failtestf "%A" e)
            Expect.equal (y.PrefillMfu, y.MaxNumSeqs, y.WorkspaceBytes) (0.42, 128, 1000L) "yaml values"
            Expect.equal y.DecodeMfu CostCoefficients.defaults.DecodeMfu "others keep defaults"
            let j = CostCoefficients.load (fixture "profile_ok.json") |> Result.defaultWith (fun e -> failtestf "%A" e)
            Expect.equal (j.PrefillMfu, j.DecodeHbmEfficiency) (0.6, 0.7) "json values"
        }
        test "profile errors name the unknown key and the bad value" {
            match CostCoefficients.load (fixture "profile_bad.yaml") with
            | Ok _ -> failtest "must fail"
            | Error es ->
                Expect.isTrue (es |> List.exists (fun e -> e.Contains "unknown coefficient 'prefilMfu'")) (sprintf "%A" es)
                Expect.isTrue (es |> List.exists (fun e -> e.Contains "'maxNumSeqs'" && e.Contains "'many'")) (sprintf "%A" es)
        }
    ]
