module OServe.Planner.Tests.GpuStepProfileTests

open System.IO
open Expecto
open OServe.Contracts.Yaml
open OServe.Planner.CostModel
open OServe.Planner.Planning
open TestPaths

let profile () = GpuStepProfile.builtIn.Value
let k = CostCoefficients.defaults
let llama70b = Hardware.llama2_70b

/// The paper's testbed as shipped (scenarios/clusters/paper-4x8-h100.yaml), through the real mapping.
let paperCluster () =
    ContractMapping.cluster (ContractYaml.ReadCluster(Path.Combine(repoRoot, "scenarios", "clusters", "paper-4x8-h100.yaml")))
    |> Result.defaultWith (fun es -> failwithf "%A" es)

let paperStep tp =
    let c = paperCluster ()
    let node = c.Nodes[0]
    StepTimeModel(k, llama70b, Links.ofNode c node, { Gpu = node.Gpu; Tp = tp; Pp = 1; CrossNode = false })

/// The GPU the profile was measured on, as a GpuSpec (its vendor figures).
let profiledGpu () =
    let g = (profile ()).Gpu
    { Name = g.Name; MemoryBytes = g.MemoryBytes; PeakFlops = g.PeakFlops; HbmBytesPerSec = g.HbmBytesPerSec }

let median (xs: float list) = let s = List.sort xs in s[s.Length / 2]
let percentile q (xs: float list) = let s = List.sort xs in s[min (s.Length - 1) (int (q * float s.Length))]

[<Tests>]
let tests =
    testList "GpuStepProfile" [
        test "the built-in profile holds the four models of the paper at their TP degrees" {
            let p = profile ()
            Expect.equal (p.Models |> Array.map (fun m -> m.Name) |> Array.sort) [| "LLaMA-30B"; "Llama-2-70B"; "OPT-30B"; "OPT-66B" |] "models"
            Expect.equal (GpuStepProfile.degrees p) [| 1; 2; 4; 8 |] "degrees"
            // LLaMA-30B's 52 heads do not split 8 ways.
            Expect.equal (p.Models |> Array.find (fun m -> m.Name = "LLaMA-30B") |> fun m -> m.Tps |> Array.map (fun t -> t.Degree)) [| 1; 2; 4 |] "LLaMA-30B"
            Expect.stringContains p.Source "h200-shapes.json" "source named"
        }
        test "model cards match profiled models by shape" {
            let p = profile ()
            Expect.equal (GpuStepProfile.tryMatch p llama70b |> Option.map (fun i -> p.Models[i].Name)) (Some "Llama-2-70B") "70B"
            Expect.isNone (GpuStepProfile.tryMatch p Hardware.llama2_7b) "7B is not profiled"
            Expect.isNone (GpuStepProfile.tryMatch p { llama70b with NumKvHeads = 64 }) "same name, other shape: no match"
        }
        test "the layer fit reproduces the measured points it was fitted on, and predicts the held-out mixed steps" {
            let checks = GpuStepProfile.checkFit (profile ())
            let errors kind = checks |> List.filter (fun c -> c.Kind = kind) |> List.map (fun c -> abs c.RelativeError)
            for kind in [ "prefill"; "decode" ] do
                Expect.isLessThan (median (errors kind)) 0.05 (sprintf "%s median error" kind)
                Expect.isLessThan (percentile 0.9 (errors kind)) 0.15 (sprintf "%s p90 error" kind)
            Expect.isLessThan (median (errors "mixed")) 0.10 "held-out mixed steps, median error"
            Expect.equal (errors "mixed").Length (15 * 9) "every mixed point checked"
        }
        test "H200 to H200 is the identity: the step model returns the fitted measurement unchanged" {
            let p = profile ()
            let gpu = profiledGpu ()
            let i = (GpuStepProfile.tryMatch p llama70b).Value
            for tp in [ 1; 2; 4; 8 ] do
                let fit = (GpuStepProfile.layerFit p i tp).Value
                let step = StepTimeModel(k, llama70b, Links.Default(450e9, 50e9), { Gpu = gpu; Tp = tp; Pp = 1; CrossNode = false })
                for hasPrefill, rows, pairs, ctx in [ false, 1.0, 0.0, 2048.0; false, 64.0, 0.0, 64.0 * 512.0; true, 2048.0, 2048.0 * 1024.0, 0.0; true, 300.0, 256.0 * 128.0, 44.0 * 900.0 ] do
                    Expect.floatClose Accuracy.veryHigh (step.LayerMs(hasPrefill, rows, pairs, ctx).Value) (GpuStepProfile.evalLayer fit hasPrefill rows pairs ctx) (sprintf "tp%d rows %g" tp rows)
            // And the transfer rule alone, on any split of roofline and floor.
            for ms, m, c in [ 0.43, 0.40, 0.01; 0.10, 0.05, 0.001; 5.6, 0.4, 4.9; 0.2, 0.3, 0.1 ] do
                Expect.floatClose Accuracy.veryHigh (GpuStepProfile.transfer p gpu ms (struct (m, c))) ms "transfer to itself"
        }
        test "transfer to an H100: bandwidth-bound time scales by the HBM ratio, compute-bound time carries over" {
            let p = profile ()
            // Pure bandwidth-bound, no floor: x 4.8 / 3.35.
            Expect.floatClose Accuracy.high (GpuStepProfile.transfer p Hardware.h100 0.4 (struct (0.4, 0.01))) (0.4 * 4.8 / 3.35) "decode weights"
            // Compute-bound with the same peak FLOP/s: unchanged.
            Expect.floatClose Accuracy.high (GpuStepProfile.transfer p Hardware.h100 5.0 (struct (0.3, 4.5))) 5.0 "prefill"
            // A floor over a bandwidth-bound roofline carries over: only the roofline part scales.
            Expect.floatClose Accuracy.high (GpuStepProfile.transfer p Hardware.h100 0.1 (struct (0.05, 0.0))) (0.05 + 0.05 * 4.8 / 3.35) "floor"
            // A100: compute-bound time scales by the FLOP/s ratio.
            Expect.floatClose Accuracy.high (GpuStepProfile.transfer p Hardware.a100 4.5 (struct (0.3, 4.5))) (4.5 * 989.0 / 312.0) "A100 prefill"
        }
        test "anchor: per-rank decode GPU-time per token at batch 1, TP8 over TP1, is 1.7-2.1 on the measured GPU" {
            let p = profile ()
            let gpu = profiledGpu ()
            let gpuMsPerToken tp =
                let step = StepTimeModel(k, llama70b, Links.Default(450e9, 50e9), { Gpu = gpu; Tp = tp; Pp = 1; CrossNode = false })
                float tp * step.LayerMs(false, 1.0, 0.0, 2048.0).Value
            let ratio = gpuMsPerToken 8 / gpuMsPerToken 1
            Expect.isGreaterThanOrEqual ratio 1.7 "TP8 costs more GPU time per token"
            Expect.isLessThanOrEqual ratio 2.1 "but not more than 2.1x"
            // On the paper's H100s the TP1 weight stream slows by the HBM ratio while TP8's per-kernel
            // floor carries over, so the gap narrows, but TP8 still costs far more per token.
            let h100 tp = float tp * (paperStep tp).LayerMs(false, 1.0, 0.0, 2048.0).Value
            Expect.isGreaterThan (h100 8 / h100 1) 1.5 "H100"
            ignore p
        }
        test "anchor: all-reduce share of a 2048-token prefill on the paper cluster is 25-40% at TP8 and 15-30% at TP4" {
            for tp, lo, hi in [ 8, 0.25, 0.40; 4, 0.15, 0.30 ] do
                let parts = (paperStep tp).Parts(StepShape.Prefill(1.0, 2048.0))
                let share = parts.CommSec / parts.TotalSec
                Expect.isGreaterThanOrEqual share lo (sprintf "tp%d share %.3f" tp share)
                Expect.isLessThanOrEqual share hi (sprintf "tp%d share %.3f" tp share)
        }
        test "anchor: TP8 has the lower light-load TTFT, two TP4 replicas the higher throughput on 2048-token prompts" {
            let c = paperCluster ()
            let node = c.Nodes[0]
            let links = Links.ofNode c node
            let estimate tp =
                let cfg = { Gpu = node.Gpu; Tp = tp; Pp = 1; CrossNode = false }
                let mem = ReplicaCost.memory k llama70b cfg |> Result.defaultWith failwith
                ReplicaCost.estimate k llama70b links cfg mem 2048.0 16.0 0.05
            let tp4, tp8 = estimate 4, estimate 8
            let gain = 2.0 * tp4.Rate / tp8.Rate - 1.0
            Expect.isGreaterThanOrEqual gain 0.10 (sprintf "2 x TP4 over 1 x TP8: %+.1f%%" (100.0 * gain))
            Expect.isLessThanOrEqual gain 0.40 (sprintf "2 x TP4 over 1 x TP8: %+.1f%%" (100.0 * gain))
            Expect.isLessThan tp8.TtftSec tp4.TtftSec "TP8 TTFT at light load"
            Expect.isLessThan ((paperStep 8).Seconds(StepShape.Prefill(1.0, 2048.0))) ((paperStep 4).Seconds(StepShape.Prefill(1.0, 2048.0))) "TP8 prefill step"
        }
        test "a model the profile lacks gets the roofline fitted by TP degree: median error under 10% on each left-out model" {
            let p = profile ()
            for left in p.Models do
                let others = GpuStepProfile(p.Source, p.Path, p.Gpu, p.Models |> Array.filter (fun m -> m.Name <> left.Name))
                let s = left.Shape
                let errors =
                    [ for t in left.Tps do
                          let fit = GpuStepProfile.rooflineFit others t.Degree
                          let work = GpuStepProfile.layerWork (GpuStepProfile.paramsPerLayer s) s.Heads s.KvHeads (s.Hidden / s.Heads) 2 t.Degree
                          for (batch, context, ms) in t.Decode do
                              let predicted = GpuStepProfile.evalRoofline fit (GpuStepProfile.rooflineMs others (work (float batch) 0.0 (float (batch * context))))
                              abs (predicted - ms) / ms
                          for (seqs, tokens, ms) in t.Prefill do
                              if seqs * tokens >= 512 then
                                  let predicted = GpuStepProfile.evalRoofline fit (GpuStepProfile.rooflineMs others (work (float (seqs * tokens)) (float seqs * float tokens * float tokens / 2.0) 0.0))
                                  abs (predicted - ms) / ms ]
                Expect.isLessThan (median errors) 0.10 (sprintf "%s left out: median error %.1f%%" left.Name (100.0 * median errors))
        }
        test "the step model says where its numbers come from" {
            Expect.stringContains ((paperStep 8).Describe()) "measured Llama-2-70B tp8" "table"
            Expect.stringContains ((paperStep 8).Describe()) "moved from H200 to H100-80GB" "transfer"
            let c = paperCluster ()
            let s7 = StepTimeModel(k, Hardware.llama2_7b, Links.ofNode c c.Nodes[0], { Gpu = c.Nodes[0].Gpu; Tp = 2; Pp = 1; CrossNode = false })
            Expect.equal s7.Source (GpuFitted("H200", 2)) "fitted for an unprofiled model"
            let none = StepTimeModel({ k with GpuSteps = None }, llama70b, Links.ofNode c c.Nodes[0], { Gpu = c.Nodes[0].Gpu; Tp = 8; Pp = 1; CrossNode = false })
            Expect.equal none.Source Roofline "without a profile"
        }
        test "a broken profile file is refused with its file, line and field" {
            let path = Path.Combine(Path.GetTempPath(), sprintf "oserve-profile-%d.yaml" (System.Random.Shared.Next()))
            try
                File.WriteAllText(path, "gpu: {name: X, tflops: 989, hbm_gbps: 4800, memory_gib: 80, measured_gemm_tflops: 700, measured_copy_gbps: 4000}\nmodels:\n  - name: M\n    shape: {architecture: llama, layers: 2, hidden: 64, intermediate: 128, heads: 4, kv_heads: 4, vocab: 10}\n    tp:\n      - degree: 1\n        prefill: [[1, 16, 0.1], [1, 64]]\n        decode: [[1, 128, 0.1], [2, 128, 0.1]]\n        lm_head: [[1, 0.01]]\n")
                match GpuStepProfile.load path with
                | Ok _ -> failtest "a prefill row with two numbers was accepted"
                | Error e ->
                    Expect.stringContains e (path + ":7:") "file and line"
                    Expect.stringContains e "prefill" "field"
                Expect.isError (GpuStepProfile.load (path + ".missing")) "missing file"
            finally File.Delete path
        }
        test "a profile that calibrates the roofline's efficiencies turns the GPU table off; other profiles keep it" {
            let read (pairs: (string * string) list) =
                CostCoefficients.ofMap "test" (readOnlyDict pairs) |> Result.defaultWith (fun e -> failtestf "%A" e)
            Expect.isNone (read [ "prefillMfu", "0.3" ]).GpuSteps "an MFU describes its own machine"
            Expect.isNone (read [ "decodeHbmEfficiency", "0.5" ]).GpuSteps "a bandwidth efficiency too"
            Expect.isSome (read [ "memoryUtilization", "0.8" ]).GpuSteps "memory settings keep the table"
            Expect.isSome (read []).GpuSteps "defaults keep the table"
        }
    ]
