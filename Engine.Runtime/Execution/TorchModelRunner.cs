using System.Diagnostics;
using OServe.Engine.Scheduling;
using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Parallelism;
using static TorchSharp.torch;

namespace OServe.Engine.Execution;

/// <summary>Where one <see cref="TorchModelRunner.Execute"/> spent its time, seconds.</summary>
/// <param name="PrepareSeconds">host: the scheduler's chunks turned into the model's batch</param>
/// <param name="PlanSeconds">host: the model's index data built and uploaded (one copy per step)</param>
/// <param name="LaunchSeconds">host: launching the forward and sampling kernels (on a GPU, overlapped with their execution)</param>
/// <param name="WaitSeconds">waiting for the sampled ids (on a GPU: for the device to finish the step)</param>
/// <param name="SampleSeconds">host: sampling on the host (CPU runs) and writing the ids back</param>
public readonly record struct RunnerTimings(double PrepareSeconds, double PlanSeconds, double LaunchSeconds, double WaitSeconds, double SampleSeconds)
{
    /// <summary>Host bookkeeping of the runner: everything except launching kernels and waiting for them.</summary>
    public double HostSeconds => PrepareSeconds + PlanSeconds + SampleSeconds;
}

/// <summary>
/// The real executor: turns a <see cref="SchedulerOutput"/> into one batched forward of an
/// <see cref="IPagedLanguageModel"/> (one device, or a tp x pp replica) over its paged KV cache,
/// then samples each chunk that reached the end of its tokens. All-greedy batches take the argmax
/// on the device. Otherwise, on a GPU, <see cref="DeviceSampler"/> samples there (the sampled ids
/// are the step's one copy back); on the CPU the logits come to the host once and
/// <see cref="Sampler"/> draws per row. Each request draws from its own stream. Runs on the engine
/// loop thread only.
/// </summary>
public sealed class TorchModelRunner : IModelRunner, IKvMigration, IDisposable
{
    private readonly IPagedLanguageModel _model;
    private readonly Sampler _sampler = new();
    private readonly Dictionary<string, SamplingRng> _rngs = new(StringComparer.Ordinal);
    private readonly List<SequenceChunk> _batch = [];
    private readonly List<DeviceSampler.Row> _rows = [];
    private readonly bool _ownsCache;
    private readonly bool _sampleOnDevice;

    /// <param name="sampleOnDevice">sample with <see cref="DeviceSampler"/>; default: when the logits live on a GPU.</param>
    public TorchModelRunner(IPagedLanguageModel model, ReplicaKvCache cache, bool ownsCache = false, bool? sampleOnDevice = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        Cache = cache ?? throw new ArgumentNullException(nameof(cache));
        _ownsCache = ownsCache;
        _sampleOnDevice = sampleOnDevice ?? model.OutputDevice.type == TorchSharp.DeviceType.CUDA;
    }

    /// <summary>A runner with its own cache of <see cref="SchedulerConfig.NumKvBlocks"/> blocks laid out as <paramref name="model"/> needs.</summary>
    public static TorchModelRunner Create(IPagedLanguageModel model, SchedulerConfig config) =>
        new(model, model.CreateKvCache(config.NumKvBlocks, config.BlockSize), ownsCache: true);

    /// <summary>A runner over a single-device model (not owned) with its own cache.</summary>
    public static TorchModelRunner Create(LlamaModel model, SchedulerConfig config) =>
        Create(new SingleDeviceLlama(model, ownsModel: false), config);

    public ReplicaKvCache Cache { get; }

    /// <summary>The last <see cref="Execute"/> that ran a forward pass.</summary>
    public RunnerTimings LastTimings { get; private set; }

    public void Execute(SchedulerOutput output, Span<int> sampledTokens) => Execute(output, sampledTokens, null);

    public void Execute(SchedulerOutput output, Span<int> sampledTokens, StepLogprobs? logprobs)
    {
        foreach (var id in output.FinishedRequestIds)
            _rngs.Remove(id);
        if (output.IsEmpty)
            return;

        long start = Stopwatch.GetTimestamp();
        var chunks = output.Chunks;
        _batch.Clear();
        bool allGreedy = true, allSingleRow = true;
        foreach (var chunk in chunks)
        {
            var tokens = new int[chunk.NumTokens];
            chunk.Sequence.CopyTokens(chunk.StartPosition, tokens);
            bool allRows = logprobs is not null && StepLogprobs.WantsPromptRows(chunk);
            allSingleRow &= !allRows;
            _batch.Add(new SequenceChunk(tokens, chunk.StartPosition, chunk.Sequence.BlockTable) { ReturnsAllLogits = allRows });
            if (chunk.SamplesToken && !IsArgMax(chunk.Sequence.Sampling))
                allGreedy = false;
        }

        using var scope = NewDisposeScope();
        // Sampling controls go up before the forward pass: a copy to the device waits for its queue.
        var controls = _sampleOnDevice && !allGreedy ? DeviceSampler.Upload(Rows(chunks), _model.Config.VocabSize, _model.OutputDevice) : null;
        long prepared = Stopwatch.GetTimestamp();
        var rows = _model.Forward(_batch, Cache); // [rows, vocab] float32; a chunk's last row is its next-token row
        var logits = allSingleRow ? rows : rows.index_select(0, tensor(LastRows(), device: rows.device));
        if (allGreedy || _sampleOnDevice)
        {
            var ids = allGreedy ? logits.argmax(-1) : DeviceSampler.Launch(logits, controls);
            long launched = Stopwatch.GetTimestamp();
            var best = ids.cpu().data<long>().ToArray();
            long waited = Stopwatch.GetTimestamp();
            for (int k = 0; k < chunks.Length; k++)
                sampledTokens[k] = chunks[k].SamplesToken ? (int)best[k] : IModelRunner.NoToken;
            Record(start, prepared, launched, waited);
        }
        else
        {
            long launchedHost = Stopwatch.GetTimestamp();
            var host = logits.cpu().data<float>().ToArray();
            long copied = Stopwatch.GetTimestamp();
            int vocab = (int)logits.shape[1];
            for (int k = 0; k < chunks.Length; k++)
            {
                if (!chunks[k].SamplesToken)
                {
                    sampledTokens[k] = IModelRunner.NoToken;
                    continue;
                }
                var seq = chunks[k].Sequence;
                sampledTokens[k] = _sampler.Sample(host.AsSpan(k * vocab, vocab), seq.Sampling, RngOf(seq));
            }
            Record(start, prepared, launchedHost, copied);
        }
        if (logprobs is not null)
            LogprobReport.Fill(rows, _batch, chunks, sampledTokens, logprobs);
    }

    private long[] LastRows()
    {
        var last = new long[_batch.Count];
        long row = -1;
        for (int k = 0; k < _batch.Count; k++)
            last[k] = row += _batch[k].NumLogitRows;
        return last;
    }

    private void Record(long start, long prepared, long launched, long waited)
    {
        long end = Stopwatch.GetTimestamp();
        double plan = _model.LastPlanSeconds;
        double forwardAndLaunch = Stopwatch.GetElapsedTime(prepared, launched).TotalSeconds;
        LastTimings = new RunnerTimings(
            Stopwatch.GetElapsedTime(start, prepared).TotalSeconds,
            plan,
            Math.Max(0, forwardAndLaunch - plan),
            Stopwatch.GetElapsedTime(launched, waited).TotalSeconds,
            Stopwatch.GetElapsedTime(waited, end).TotalSeconds);
    }

    /// <summary>Each chunk's sampling controls and, for chunks that sample, one uniform from its request's stream.</summary>
    private List<DeviceSampler.Row> Rows(System.Collections.Immutable.ImmutableArray<ScheduledChunk> chunks)
    {
        _rows.Clear();
        foreach (var chunk in chunks)
        {
            var s = chunk.Sequence.Sampling;
            bool draws = chunk.SamplesToken && !IsArgMax(s);
            _rows.Add(new DeviceSampler.Row(draws ? s.Temperature : 0f, s.TopK, s.TopP, draws ? RngOf(chunk.Sequence).NextDouble() : 0));
        }
        return _rows;
    }

    /// <summary>Only a cache that holds every layer can give or take a sequence's KV whole.</summary>
    public bool CanMigrate => Cache.HoldsEveryLayer;

    /// <summary>
    /// Copies the sequence's K/V into a staging cache of this replica's layout (a copy: the blocks
    /// may be reused as soon as the scheduler frees them). The staging cache's blocks are 0..n-1.
    /// </summary>
    public KvBlocks Export(Sequence seq)
    {
        int numBlocks = (seq.NumComputedTokens + Cache.BlockSize - 1) / Cache.BlockSize;
        if (numBlocks > seq.NumBlocks)
            throw new InvalidOperationException($"'{seq.RequestId}' has {seq.NumComputedTokens} computed tokens but only {seq.NumBlocks} blocks");
        var staging = Cache.EmptyLike(Math.Max(numBlocks, 1));
        try
        {
            KvMigration.Copy(Cache, seq.BlockTable, staging, KvBlocks.TableOf(numBlocks), seq.NumComputedTokens);
            return new KvBlocks(staging, seq.NumComputedTokens);
        }
        catch
        {
            staging.Dispose();
            throw;
        }
    }

    /// <summary>Writes K/V exported by any replica of the same model (any tp/pp layout, any block size) into the sequence's blocks here.</summary>
    public void Import(Sequence seq, KvBlocks kv)
    {
        int numBlocks = (kv.NumTokens + Cache.BlockSize - 1) / Cache.BlockSize;
        if (kv.NumTokens != seq.NumComputedTokens || numBlocks > seq.NumBlocks)
            throw new ArgumentException(
                $"KV of {kv.NumTokens} tokens does not fit '{seq.RequestId}' ({seq.NumComputedTokens} computed, {seq.NumBlocks} blocks of {Cache.BlockSize} tokens)");
        KvMigration.Copy(kv.Blocks, kv.BlockTable, Cache, seq.BlockTable, kv.NumTokens);
    }

    public void Dispose()
    {
        if (_ownsCache)
            Cache.Dispose();
    }

    private static bool IsArgMax(SamplingParams sampling) => sampling.IsGreedy || sampling.TopK == 1;

    /// <summary>
    /// The request's stream, made on its first sampled token here. A seeded stream skips the draws
    /// taken before: one per token the sequence already holds (it was sampled on another replica and
    /// moved here with its KV cache) and <see cref="SamplingParams.SeedStreamOffset"/> (it was resumed
    /// from its streamed tokens), so a moved or resumed request samples what it would have unmoved.
    /// </summary>
    private SamplingRng RngOf(Sequence seq)
    {
        if (!_rngs.TryGetValue(seq.RequestId, out var rng))
        {
            if (seq.Sampling.Seed is { } seed)
            {
                rng = new SamplingRng(seed);
                for (long i = (long)seq.Sampling.SeedStreamOffset + seq.NumOutputTokens; i > 0; i--)
                    rng.NextUInt64();
            }
            else
                rng = SamplingRng.FromEntropy();
            _rngs[seq.RequestId] = rng;
        }
        return rng;
    }
}
