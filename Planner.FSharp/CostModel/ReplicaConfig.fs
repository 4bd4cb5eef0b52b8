namespace OServe.Planner.CostModel

/// A replica configuration: GPU type, tensor- and pipeline-parallel degree. TP groups always sit
/// inside one node; a replica whose TP*PP exceeds a node spans nodes with whole PP stages per node.
type ReplicaConfig =
    { Gpu: GpuSpec
      Tp: int
      Pp: int
      /// True when PP stages sit on different nodes (stage sends go over the inter-node link).
      CrossNode: bool }

    member c.Size = c.Tp * c.Pp
    member c.Label = sprintf "%s/tp%d/pp%d" c.Gpu.Name c.Tp c.Pp

/// Memory split of one GPU of a replica (the busiest stage).
type ReplicaMemory =
    { BudgetBytes: int64
      WeightBytesPerGpu: int64
      KvBytesPerTokenPerGpu: int64
      /// Tokens of KV the whole replica holds (every GPU holds its slice of every token).
      KvCapacityTokens: int64 }

/// Links and collectives seen by a replica (intra-node always; inter-node when CrossNode).
/// An all-reduce of S bytes over n GPUs takes AllReduceLatencySec + 2 (n-1)/n * S / AllReduceBusBytesPerSec
/// (nccl-tests' bus bandwidth convention); a PP send takes the link's latency + S / its bandwidth.
type Links =
    { /// Point-to-point bandwidth between two GPUs of the node, bytes/s per direction.
      IntraBytesPerSec: float
      /// Bandwidth between nodes, bytes/s per GPU per direction.
      InterBytesPerSec: float
      /// Small-message all-reduce (and intra-node send) latency inside the node, seconds.
      AllReduceLatencySec: float
      /// Large-message all-reduce bus bandwidth inside the node, bytes/s.
      AllReduceBusBytesPerSec: float
      /// Latency of one send between nodes, seconds.
      InterLatencySec: float }

    /// Links of these bandwidths with the default collective figures (Hardware.defaultAllReduce*).
    static member Default(intraBytesPerSec: float, interBytesPerSec: float) =
        { IntraBytesPerSec = intraBytesPerSec; InterBytesPerSec = interBytesPerSec
          AllReduceLatencySec = Hardware.defaultAllReduceLatencySec
          AllReduceBusBytesPerSec = Hardware.defaultBusBytesPerSec intraBytesPerSec
          InterLatencySec = Hardware.defaultInterLatencySec }

[<RequireQualifiedAccess>]
module Links =
    /// The links a replica on node n sees.
    let ofNode (cluster: ClusterSpec) (n: NodeSpec) : Links =
        { IntraBytesPerSec = n.IntraLinkBytesPerSec; InterBytesPerSec = cluster.InterLinkBytesPerSec
          AllReduceLatencySec = n.AllReduceLatencySec; AllReduceBusBytesPerSec = n.AllReduceBusBytesPerSec
          InterLatencySec = cluster.InterLatencySec }

/// Throughput and latency of one replica config on one request type.
type ServiceEstimate =
    { /// Requests/s one replica sustains (continuous batching at BatchSize within KV capacity).
      Rate: float
      BatchSize: int
      TtftSec: float
      TpotSec: float
      E2eSec: float }

