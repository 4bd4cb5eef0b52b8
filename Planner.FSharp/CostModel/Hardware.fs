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
      IntraLinkBytesPerSec: float }

type ClusterSpec =
    { Nodes: NodeSpec[]
      /// InfiniBand/RoCE bandwidth between nodes, bytes/s per direction.
      InterLinkBytesPerSec: float }

    member this.NumGpus = this.Nodes |> Array.sumBy (fun n -> n.NumGpus)

type ModelSpec =
    { Name: string
      NumLayers: int
      HiddenSize: int
      IntermediateSize: int
      NumHeads: int
      NumKvHeads: int
      HeadDim: int
      VocabSize: int
      DtypeBytes: int
      MaxContextTokens: int }

    /// Parameters of one decoder layer: q/k/v/o projections, gated MLP (3 matrices), two norms.
    member m.LayerParams =
        let h = int64 m.HiddenSize
        let q = h * int64 (m.NumHeads * m.HeadDim)
        let kv = 2L * h * int64 (m.NumKvHeads * m.HeadDim)
        let o = int64 (m.NumHeads * m.HeadDim) * h
        q + kv + o + 3L * h * int64 m.IntermediateSize + 2L * h

    /// Embedding and (untied) LM head.
    member m.EmbeddingParams = int64 m.VocabSize * int64 m.HiddenSize

    member m.TotalParams = int64 m.NumLayers * m.LayerParams + 2L * m.EmbeddingParams + int64 m.HiddenSize

    member m.WeightBytes = m.TotalParams * int64 m.DtypeBytes

    /// K and V for one token over all layers: 2 * layers * kv_heads * head_dim * dtype_bytes.
    member m.KvBytesPerToken = 2L * int64 m.NumLayers * int64 m.NumKvHeads * int64 m.HeadDim * int64 m.DtypeBytes

[<RequireQualifiedAccess>]
module Hardware =
    let GiB = 1024L * 1024L * 1024L

    let h100 = { Name = "H100-80GB"; MemoryBytes = 80L * GiB; PeakFlops = 989e12; HbmBytesPerSec = 3.35e12 }
    let a100 = { Name = "A100-80GB"; MemoryBytes = 80L * GiB; PeakFlops = 312e12; HbmBytesPerSec = 2.0e12 }
    let l40s = { Name = "L40S"; MemoryBytes = 48L * GiB; PeakFlops = 362e12; HbmBytesPerSec = 0.864e12 }

    /// numNodes nodes of numGpus GPUs each; NVLink 450 GB/s, IB 50 GB/s (400 Gb/s) by default.
    let uniformCluster (gpu: GpuSpec) (numNodes: int) (numGpus: int) : ClusterSpec =
        { Nodes = Array.init numNodes (fun i -> { Name = sprintf "node%d" i; Gpu = gpu; NumGpus = numGpus; IntraLinkBytesPerSec = 450e9 })
          InterLinkBytesPerSec = 50e9 }

    let llama2_70b =
        { Name = "Llama-2-70B"; NumLayers = 80; HiddenSize = 8192; IntermediateSize = 28672; NumHeads = 64
          NumKvHeads = 8; HeadDim = 128; VocabSize = 32000; DtypeBytes = 2; MaxContextTokens = 4096 }

    let llama2_13b =
        { Name = "Llama-2-13B"; NumLayers = 40; HiddenSize = 5120; IntermediateSize = 13824; NumHeads = 40
          NumKvHeads = 40; HeadDim = 128; VocabSize = 32000; DtypeBytes = 2; MaxContextTokens = 4096 }

    let llama2_7b =
        { Name = "Llama-2-7B"; NumLayers = 32; HiddenSize = 4096; IntermediateSize = 11008; NumHeads = 32
          NumKvHeads = 32; HeadDim = 128; VocabSize = 32000; DtypeBytes = 2; MaxContextTokens = 4096 }
