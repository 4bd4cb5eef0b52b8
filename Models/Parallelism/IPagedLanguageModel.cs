using OServe.Models.Kv;
using OServe.Models.Llama;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// What an executor needs of a model replica, single-device (<see cref="SingleDeviceLlama"/>) or
/// spread over devices (<see cref="ParallelLlama"/>): a KV cache laid out to match the replica,
/// and one batched forward step over it.
/// </summary>
public interface IPagedLanguageModel : IDisposable
{
    LlamaConfig Config { get; }

    ScalarType DType { get; }

    /// <summary>Device the logits come back on.</summary>
    Device OutputDevice { get; }

    /// <summary>
    /// A cache of <paramref name="numBlocks"/> blocks on every device of the replica (each device
    /// holding its layers and KV heads). Block ids are shared: one block table addresses the same
    /// block on every device.
    /// </summary>
    ReplicaKvCache CreateKvCache(int numBlocks, int blockSize);

    /// <summary>
    /// One step, as <see cref="LlamaModel.Forward"/>: writes the chunks' K/V into the cache and
    /// returns float32 logits, one row per <see cref="SequenceChunk.NumLogitRows"/> of each chunk in
    /// batch order ([batch.Count, vocab] when every chunk wants only its last token).
    /// </summary>
    Tensor Forward(IReadOnlyList<SequenceChunk> batch, ReplicaKvCache cache);

    /// <summary>Host seconds the last <see cref="Forward"/> spent on index data before launching kernels (0 where not measured).</summary>
    double LastPlanSeconds => 0;
}
