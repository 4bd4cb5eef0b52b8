namespace OServe.Planner.CostModel

open System
open System.Collections.Generic
open Microsoft.FSharp.Reflection

/// Every calibratable number of the cost model. Defaults are textbook values for H100-class GPUs;
/// a profile file (written by `oserve profile`) replaces any subset of them. Profile file shape
/// (YAML, or JSON since YAML reads JSON):
///
///     source: oserve profile 2026-11-27 H100   # optional, free text
///     coefficients:                            # keys are these field names in camelCase
///       prefillMfu: 0.52
///       decodeHbmEfficiency: 0.78
///
/// Keys not listed here are refused (a typo must not silently keep a default).
///
/// Three forms of step time (StepTimeModel, the one implementation). By default, measured per-rank
/// GPU layer times (GpuSteps: the built-in H200 profile, moved to other GPUs by their figures) plus
/// the cluster's collectives; `GpuSteps = None` gives the analytic roofline (max of compute and memory
/// traffic, from the efficiency factors below), and so does a profile that sets one of those
/// efficiencies (it calibrates the roofline of its own machine). A measured profile of a real engine (`oserve
/// profile`, e.g. of the CPU engine, where compute and weight streaming do not overlap and a fixed
/// per-step cost dominates) sets the five linear `*Sec*` terms instead: as soon as one of them is
/// > 0, a step of a TP=1, PP=1 replica takes
///     iterationOverheadSec + prefillSecPerToken * prefill tokens + prefillSecPerSeq * prefill chunks
///     + prefillSecPerAttentionPair * causal (query, key) pairs of the prefill chunks
///     + decodeSecPerSeq * decodes + decodeSecPerContextToken * context tokens the decodes attend to
/// (see StepTimeModel for larger shapes).
type CostCoefficients =
    { /// Fraction of GPU memory the engine may use (vLLM's gpu_memory_utilization).
      MemoryUtilization: float
      /// Activation/workspace memory reserved per GPU, bytes.
      WorkspaceBytes: int64
      /// A replica must hold at least this many KV tokens to count as feasible.
      MinKvTokens: int64
      /// Continuous-batching cap on running sequences per replica (vLLM max_num_seqs).
      MaxNumSeqs: int
      /// Model FLOPs utilization during prefill (compute-bound).
      PrefillMfu: float
      /// FLOPs utilization during decode (rarely binding; decode is bandwidth-bound).
      DecodeMfu: float
      /// Achieved fraction of HBM bandwidth when streaming weights and KV in decode.
      DecodeHbmEfficiency: float
      /// Multiplies the causal attention FLOPs term 2 * layers * tokens^2 * heads * head_dim.
      AttentionFlopsFactor: float
      /// Achieved fraction of link bandwidth for point-to-point sends and shard copies (all-reduces
      /// use the cluster file's measured bus bandwidth instead).
      LinkEfficiency: float
      /// Scheduler and kernel-launch overhead per engine iteration, seconds.
      IterationOverheadSec: float
      /// Measured step time per prefill token (0 = roofline model).
      PrefillSecPerToken: float
      /// Measured step time per prefill chunk in the batch (LM head row, sampling, bookkeeping).
      PrefillSecPerSeq: float
      /// Measured step time per causal (query, key) pair attended by prefill chunks.
      PrefillSecPerAttentionPair: float
      /// Measured step time per decoding sequence (one token each).
      DecodeSecPerSeq: float
      /// Measured step time per context token a decode attends to (KV read).
      DecodeSecPerContextToken: float
      /// Bandwidth of a cold weight load from storage, bytes/s (switch steps without a source GPU).
      StorageBytesPerSec: float
      /// Fraction of memory kept free on a device while a switch moves data onto it.
      SwitchMemoryHeadroom: float
      /// Sequences with at most this many remaining output tokens drain instead of moving their KV.
      DrainMaxRemainingTokens: int
      /// Measured per-rank GPU layer times (StepTimeModel): the built-in H200 profile by default,
      /// None for the analytic roofline alone. Not a scalar: set in code or by --gpu-profile, never
      /// by a `coefficients:` key.
      GpuSteps: GpuStepProfile option }

[<RequireQualifiedAccess>]
module CostCoefficients =
    let defaults =
        { MemoryUtilization = 0.90
          WorkspaceBytes = 2L * 1024L * 1024L * 1024L
          MinKvTokens = 4096L
          MaxNumSeqs = 256
          PrefillMfu = 0.50
          DecodeMfu = 0.30
          DecodeHbmEfficiency = 0.80
          AttentionFlopsFactor = 1.0
          LinkEfficiency = 0.70
          IterationOverheadSec = 2e-3
          PrefillSecPerToken = 0.0
          PrefillSecPerSeq = 0.0
          PrefillSecPerAttentionPair = 0.0
          DecodeSecPerSeq = 0.0
          DecodeSecPerContextToken = 0.0
          StorageBytesPerSec = 2e9
          SwitchMemoryHeadroom = 0.15
          DrainMaxRemainingTokens = 64
          GpuSteps = Some GpuStepProfile.builtIn.Value }

    /// The same coefficients with another GPU step-time profile (None: the analytic roofline).
    let withGpuSteps (profile: GpuStepProfile option) (k: CostCoefficients) = { k with GpuSteps = profile }

    /// True when a measured (linear) step-time profile replaces the roofline.
    let isMeasured (k: CostCoefficients) =
        k.PrefillSecPerToken > 0.0 || k.PrefillSecPerSeq > 0.0 || k.PrefillSecPerAttentionPair > 0.0
        || k.DecodeSecPerSeq > 0.0 || k.DecodeSecPerContextToken > 0.0

    let private camel (s: string) = string (Char.ToLowerInvariant s[0]) + s.Substring 1

    let private fields = FSharpType.GetRecordFields(typeof<CostCoefficients>)

    /// The fields a `coefficients:` mapping may set (the scalars).
    let private scalar (f: Reflection.PropertyInfo) =
        f.PropertyType = typeof<float> || f.PropertyType = typeof<int64> || f.PropertyType = typeof<int>

    /// Replaces defaults by the values of a key -> text map; errors name the key and the source.
    let ofMap (source: string) (values: IReadOnlyDictionary<string, string>) : Result<CostCoefficients, string list> =
        let byName = fields |> Array.filter scalar |> Array.map (fun f -> camel f.Name, f) |> dict
        let current = FSharpValue.GetRecordFields(defaults)
        let errors = List<string>()
        let inv = Globalization.CultureInfo.InvariantCulture
        for KeyValue(key, text) in values do
            match byName.TryGetValue key with
            | false, _ ->
                errors.Add(sprintf "%s: unknown coefficient '%s' (known: %s)" source key (String.Join(", ", byName.Keys)))
            | true, f ->
                let i = Array.IndexOf(fields, f)
                let bad () = errors.Add(sprintf "%s: coefficient '%s' must be a non-negative %s, got '%s'" source key f.PropertyType.Name text)
                if f.PropertyType = typeof<float> then
                    match Double.TryParse(text, Globalization.NumberStyles.Float, inv) with
                    | true, v when Double.IsFinite v && v >= 0.0 -> current[i] <- box v
                    | _ -> bad ()
                elif f.PropertyType = typeof<int64> then
                    match Int64.TryParse(text, Globalization.NumberStyles.Integer, inv) with
                    | true, v when v >= 0L -> current[i] <- box v
                    | _ -> bad ()
                else
                    match Int32.TryParse(text, Globalization.NumberStyles.Integer, inv) with
                    | true, v when v >= 0 -> current[i] <- box v
                    | _ -> bad ()
        if errors.Count > 0 then Error(List.ofSeq errors)
        else
            let c = FSharpValue.MakeRecord(typeof<CostCoefficients>, current) :?> CostCoefficients
            if c.MemoryUtilization > 1.0 then Error [ sprintf "%s: memoryUtilization must be in (0, 1], got %g" source c.MemoryUtilization ]
            elif c.PrefillMfu <= 0.0 || c.DecodeMfu <= 0.0 || c.DecodeHbmEfficiency <= 0.0 || c.LinkEfficiency <= 0.0 then
                Error [ sprintf "%s: efficiency factors (prefillMfu, decodeMfu, decodeHbmEfficiency, linkEfficiency) must be > 0" source ]
            // A profile that calibrates the roofline's efficiencies describes its own machine (the
            // demo's one-core CPU devices, say): the H200 layer table must not stand in for it.
            elif [ "prefillMfu"; "decodeMfu"; "decodeHbmEfficiency" ] |> List.exists values.ContainsKey then Ok { c with GpuSteps = None }
            else Ok c

    /// Reads a profile file (YAML or JSON) with a top-level `coefficients` mapping.
    let load (path: string) : Result<CostCoefficients, string list> =
        if not (IO.File.Exists path) then Error [ sprintf "%s: profile file not found" path ]
        else
            try
                let yaml = YamlDotNet.RepresentationModel.YamlStream()
                use reader = new IO.StreamReader(path)
                yaml.Load(reader)
                if yaml.Documents.Count = 0 then Error [ sprintf "%s: empty profile" path ]
                else
                    match yaml.Documents[0].RootNode with
                    | :? YamlDotNet.RepresentationModel.YamlMappingNode as root ->
                        let key = YamlDotNet.RepresentationModel.YamlScalarNode("coefficients")
                        match root.Children.TryGetValue key with
                        | true, (:? YamlDotNet.RepresentationModel.YamlMappingNode as m) ->
                            let values = Dictionary<string, string>()
                            let errs = List<string>()
                            for KeyValue(k, v) in m.Children do
                                match k, v with
                                | (:? YamlDotNet.RepresentationModel.YamlScalarNode as ks), (:? YamlDotNet.RepresentationModel.YamlScalarNode as vs) ->
                                    values[string ks.Value] <- string vs.Value
                                | _ -> errs.Add(sprintf "%s: line %d: each coefficient must be 'name: number'" path k.Start.Line)
                            if errs.Count > 0 then Error(List.ofSeq errs) else ofMap path values
                        | _ -> Error [ sprintf "%s: expected a top-level 'coefficients:' mapping" path ]
                    | _ -> Error [ sprintf "%s: expected a mapping at the top level" path ]
            with :? YamlDotNet.Core.YamlException as ex ->
                Error [ sprintf "%s: line %d: %s" path ex.Start.Line ex.Message ]
