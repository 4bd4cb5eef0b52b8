namespace OServe.Planner.CostModel

/// The planner's own view of the hardware and model (converted from Contracts at the boundary, so
/// the cost model and solver can be tested without YAML). Bytes are int64 so memory checks are exact.
type GpuSpec =
    { Name: string
      MemoryBytes: int64
      /// Dense bf16 FLOP/s.
      PeakFlops: float
      HbmBytesPerSec: float }

type NodeSpec =
    { Name: string
      Gpu: GpuSpec
      NumGpus: int
      /// NVLink (or PCIe) bandwidth between two GPUs of this node, bytes/s per direction.
      IntraLinkBytesPerSec: float
      /// Small-message all-reduce latency among this node's GPUs, seconds.
      AllReduceLatencySec: float
      /// Large-message all-reduce bus bandwidth among this node's GPUs (nccl-tests busbw), bytes/s.
      AllReduceBusBytesPerSec: float }

type ClusterSpec =
    { Nodes: NodeSpec[]
      /// InfiniBand/RoCE bandwidth between nodes, bytes/s per direction.
      InterLinkBytesPerSec: float
      /// Latency of one send between nodes, seconds.
      InterLatencySec: float }

    member this.NumGpus = this.Nodes |> Array.sumBy (fun n -> n.NumGpus)

type ModelSpec =
    { Name: string
      NumLayers: int
      HiddenSize: int
      NumHeads: int
      NumKvHeads: int
      HeadDim: int
      DtypeBytes: int
      MaxContextTokens: int
      /// Parameters of one decoder layer (architecture-specific; from the model card).
      ParamsPerLayer: int64
      /// Parameters before the first layer (token embedding, learned positions): on the first PP stage.
      InputParams: int64
      /// Parameters after the last layer (final norm, LM head unless tied): on the last PP stage.
      OutputParams: int64 }

    member m.TotalParams = int64 m.NumLayers * m.ParamsPerLayer + m.InputParams + m.OutputParams

    member m.WeightBytes = m.TotalParams * int64 m.DtypeBytes

    /// K and V for one token over all layers: 2 * layers * kv_heads * head_dim * dtype_bytes.
    member m.KvBytesPerToken = 2L * int64 m.NumLayers * int64 m.NumKvHeads * int64 m.HeadDim * int64 m.DtypeBytes

    /// A Llama-family shape: q/k/v/o projections, gated MLP (3 matrices), two norms per layer;
    /// untied embedding and LM head.
    static member Llama(name, layers, hidden, intermediate, heads, kvHeads, vocab, dtypeBytes, maxContext) =
        let h = int64 hidden
        let headDim = hidden / heads
        let q = h * int64 (heads * headDim)
        let kv = 2L * h * int64 (kvHeads * headDim)
        { Name = name; NumLayers = layers; HiddenSize = hidden; NumHeads = heads; NumKvHeads = kvHeads
          HeadDim = headDim; DtypeBytes = dtypeBytes; MaxContextTokens = maxContext
          ParamsPerLayer = q + kv + q + 3L * h * int64 intermediate + 2L * h
          InputParams = int64 vocab * h
          OutputParams = int64 vocab * h + h }

[<RequireQualifiedAccess>]
module Hardware =
    let GiB = 1024L * 1024L * 1024L

    let h100 = { Name = "H100-80GB"; MemoryBytes = 80L * GiB; PeakFlops = 989e12; HbmBytesPerSec = 3.35e12 }
    let a100 = { Name = "A100-80GB"; MemoryBytes = 80L * GiB; PeakFlops = 312e12; HbmBytesPerSec = 2.0e12 }
    let l40s = { Name = "L40S"; MemoryBytes = 48L * GiB; PeakFlops = 362e12; HbmBytesPerSec = 0.864e12 }

    /// Published nccl-tests all_reduce_perf figures for 8 x H100 SXM over NVSwitch: 460-480 GB/s bus
    /// bandwidth for large messages, 10-25 us for small ones. The default for a node whose cluster
    /// file gives none: this latency, and this bandwidth capped at the node's link (x 470/450, the
    /// H100's ratio of bus bandwidth to its 450 GB/s per-direction NVLink: NVSwitch reduces in the switch).
    let defaultAllReduceLatencySec = 20e-6
    let defaultAllReduceBusBytesPerSec = 470e9
    let defaultInterLatencySec = 25e-6

    let defaultBusBytesPerSec (intraLinkBytesPerSec: float) =
        min defaultAllReduceBusBytesPerSec (intraLinkBytesPerSec * 470.0 / 450.0)

    /// A node with the default collective figures for its link.
    let node (name: string) (gpu: GpuSpec) (numGpus: int) (intraLinkBytesPerSec: float) : NodeSpec =
        { Name = name; Gpu = gpu; NumGpus = numGpus; IntraLinkBytesPerSec = intraLinkBytesPerSec
          AllReduceLatencySec = defaultAllReduceLatencySec; AllReduceBusBytesPerSec = defaultBusBytesPerSec intraLinkBytesPerSec }

    let cluster (nodes: NodeSpec seq) (interLinkBytesPerSec: float) : ClusterSpec =
        { Nodes = Array.ofSeq nodes; InterLinkBytesPerSec = interLinkBytesPerSec; InterLatencySec = defaultInterLatencySec }

    /// numNodes nodes of numGpus GPUs each; NVLink 450 GB/s, IB 50 GB/s (400 Gb/s) by default.
    let uniformCluster (gpu: GpuSpec) (numNodes: int) (numGpus: int) : ClusterSpec =
        cluster (Array.init numNodes (fun i -> node (sprintf "node%d" i) gpu numGpus 450e9)) 50e9

    let llama2_70b = ModelSpec.Llama("Llama-2-70B", 80, 8192, 28672, 64, 8, 32000, 2, 4096)
    let llama2_13b = ModelSpec.Llama("Llama-2-13B", 40, 5120, 13824, 40, 40, 32000, 2, 4096)
    let llama2_7b = ModelSpec.Llama("Llama-2-7B", 32, 4096, 11008, 32, 32, 32000, 2, 4096)
