using OServe.Models.Kv;
using OServe.Models.Llama;
using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// A run of a replica's pipeline stages after its first run, wherever it executes (in this process,
/// or on another node's worker): it keeps the KV cache of its own layers, with the same block count
/// and size as the first run's so the engine's one block table addresses both, and continues each
/// step from the previous run's activations.
/// </summary>
public interface IStageRun : IDisposable
{
    /// <summary>The stages it holds.</summary>
    IndexRange Stages { get; }

    /// <summary>Allocates its KV cache (called once, before the first step).</summary>
    void CreateKvCache(int numBlocks, int blockSize);

    /// <summary>
    /// One step of its stages from <paramref name="hidden"/> ([tokens, dim], the previous run's
    /// output): the activations for the next run, or the float32 logits when it holds the last stage.
    /// </summary>
    Tensor Forward(IReadOnlyList<SequenceChunk> batch, Tensor hidden);
}

/// <summary>A run of stages in this process: a <see cref="ParallelLlama"/> part and its cache.</summary>
public sealed class LocalStageRun(ParallelLlama part) : IStageRun
{
    private ReplicaKvCache? _cache;

    public IndexRange Stages => part.Stages;
    public ParallelLlama Part => part;

    public void CreateKvCache(int numBlocks, int blockSize)
    {
        _cache?.Dispose();
        _cache = part.CreateKvCache(numBlocks, blockSize);
    }

    public Tensor Forward(IReadOnlyList<SequenceChunk> batch, Tensor hidden) =>
        part.ForwardPart(batch, _cache ?? throw new InvalidOperationException($"stages {Stages}: CreateKvCache first"), hidden);

    public void Dispose()
    {
        _cache?.Dispose();
        part.Dispose();
    }
}

/// <summary>
/// A replica whose pipeline stages run in parts: the first (<paramref name="head"/>, here: it embeds
/// the tokens, and the engine's KV cache holds its layers) and then each of <paramref name="rest"/>
/// in order, each handed the activations of the one before; the last returns the logits. As a
/// whole it is one <see cref="IPagedLanguageModel"/>, so the engine, its scheduler and sampling run
/// it unchanged. The engine's cache holds the head's layers only, so a sequence's KV cannot leave
/// or join such a replica whole (<see cref="ReplicaKvCache.HoldsEveryLayer"/>).
/// </summary>
public sealed class PipelinedLlama : IPagedLanguageModel
{
    private readonly ParallelLlama _head;
    private readonly IStageRun[] _rest;

    public PipelinedLlama(ParallelLlama head, IReadOnlyList<IStageRun> rest)
    {
        ArgumentNullException.ThrowIfNull(head);
        ArgumentNullException.ThrowIfNull(rest);
        if (head.Stages.Start != 0)
            throw new ArgumentException($"the head run must start at stage 0, it holds {head.Stages}", nameof(head));
        int next = head.Stages.End;
        foreach (var run in rest)
        {
            if (run.Stages.Start != next)
                throw new ArgumentException($"stage runs must follow one another: after stage {next - 1} comes {run.Stages}", nameof(rest));
            next = run.Stages.End;
        }
        if (next != head.Layout.Pp)
            throw new ArgumentException($"the runs end at stage {next - 1}; the replica has {head.Layout.Pp} stages", nameof(rest));
        _head = head;
        _rest = rest.ToArray();
    }

    public LlamaConfig Config => _head.Config;
    public ScalarType DType => _head.DType;
    public ParallelLlama Head => _head;
    public IReadOnlyList<IStageRun> Rest => _rest;

    /// <summary>The last run may be another process's: its logits arrive in host memory.</summary>
    public Device OutputDevice => _rest.Length == 0 ? _head.OutputDevice : _rest[^1] is LocalStageRun local ? local.Part.OutputDevice : CPU;

    public ReplicaKvCache CreateKvCache(int numBlocks, int blockSize)
    {
        foreach (var run in _rest)
            run.CreateKvCache(numBlocks, blockSize);
        return _head.CreateKvCache(numBlocks, blockSize);
    }

    public Tensor Forward(IReadOnlyList<SequenceChunk> batch, ReplicaKvCache cache)
    {
        var x = _head.ForwardPart(batch, cache, hidden: null);
        foreach (var run in _rest)
        {
            using var previous = x;
            x = run.Forward(batch, previous);
        }
        return x;
    }

    public void Dispose()
    {
        foreach (var run in _rest)
            run.Dispose();
        _head.Dispose();
    }

    public override string ToString() => $"{_head} then {string.Join(", then ", _rest.Select(r => r.ToString()))}";
}
