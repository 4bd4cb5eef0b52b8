using System.Diagnostics;
using OServe.Contracts;
using OServe.Models;
using OServe.Models.Kv;
using OServe.Models.Llama;
using TorchSharp;

namespace OServe.Engine.Profiling;

/// <summary>What to compare and within which limits.</summary>
public sealed record CalibrationComparisonOptions
{
    public required torch.Device Device { get; init; }
    public torch.ScalarType DType { get; init; } = torch.ScalarType.BFloat16;
    /// <summary>Models of the file to compare (null: every one with a Llama card).</summary>
    public IReadOnlyCollection<string>? Models { get; init; }
    /// <summary>TP degrees to compare (null: all in the file).</summary>
    public IReadOnlyCollection<int>? Tps { get; init; }
    /// <summary>Layers of the larger of the two stacks timed; the per-layer time is the slope between 1 layer and 1 + this many.</summary>
    public int Layers { get; init; } = 4;
    public int Repeats { get; init; } = 3;
    public int BlockSize { get; init; } = 16;
    /// <summary>Shapes that put more tokens than this through one step are skipped (bounds a CPU run).</summary>
    public int MaxStepTokens { get; init; } = int.MaxValue;
    /// <summary>Memory the two stacks' KV caches may take; decode shapes needing more are skipped.</summary>
    public double KvBudgetGib { get; init; } = 24;
    public double BudgetSeconds { get; init; } = 120;
    public long Seed { get; init; } = 5;
}

/// <summary>One shape: the engine's milliseconds per layer against the calibration's, or why it was not timed.</summary>
public sealed record CalibrationComparisonRow(string Model, int Tp, CalibrationShape Shape, double? MsPerLayer, string? Skipped)
{
    /// <summary>Ours over the calibration's eager time (decode: eager launches, as the engine runs them).</summary>
    public double? Ratio => MsPerLayer / Shape.MsPerLayer;
}

/// <summary>
/// <c>oserve profile --calibration FILE</c>: the engine's own forward step at the shapes of a GPU
/// calibration file (../shared/calibration/h200-shapes.json: one tensor-parallel rank's slice of
/// each model, per layer), to see layer by layer where the engine stands against plain PyTorch on
/// the same GPU. A rank's slice is built as a Llama of that shape (its heads, KV heads and MLP
/// columns; all-reduces are not part of either figure) with random weights on the device, in two
/// stacks (1 and 1 + Layers layers); the per-layer time is the difference over the extra layers, so
/// the step's fixed costs (index upload, embedding, LM head) cancel. KV contents do not change a
/// step's time, so decode contexts are empty cache blocks, never prefilled.
/// </summary>
public static class CalibrationComparison
{
    public static IReadOnlyList<CalibrationComparisonRow> Run(CalibrationShapes.File file, CalibrationComparisonOptions o, Func<string, ModelCard?> cardOf, TextWriter log)
    {
        var clock = Stopwatch.StartNew();
        var rows = new List<CalibrationComparisonRow>();
        foreach (var entry in file.Entries)
        {
            if (o.Models is not null && !o.Models.Contains(entry.Model, StringComparer.OrdinalIgnoreCase)) continue;
            if (o.Tps is not null && !o.Tps.Contains(entry.Tp)) continue;
            var card = cardOf(entry.Model);
            string? why = card is null ? "no model card of that name"
                : card.Architecture != ModelArchitecture.Llama ? $"architecture {card.Architecture}: the engine runs Llama only"
                : clock.Elapsed.TotalSeconds > o.BudgetSeconds ? "time budget spent" : null;
            if (why is not null)
            {
                rows.AddRange(entry.Shapes.Select(s => new CalibrationComparisonRow(entry.Model, entry.Tp, s, null, why)));
                continue;
            }
            try
            {
                rows.AddRange(CompareEntry(entry, card!, o, clock, log));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                log.WriteLine($"  {entry.Model} tp{entry.Tp} failed: {e.Message}");
                rows.AddRange(entry.Shapes.Select(s => new CalibrationComparisonRow(entry.Model, entry.Tp, s, null, $"failed: {e.Message.Split('\n')[0]}")));
            }
        }
        return rows;
    }

    /// <summary>One tensor-parallel rank's slice of a card as a model shape; null when the heads do not split that way.</summary>
    public static LlamaConfig? RankConfig(ModelCard card, int tp, int layers, int maxSeqLen)
    {
        if (card.Heads % tp != 0) return null;
        int kv = card.KvHeads % tp == 0 ? card.KvHeads / tp : tp % card.KvHeads == 0 ? 1 : 0; // split, or replicated past the KV heads
        if (kv == 0) return null;
        return new LlamaConfig
        {
            Dim = card.Hidden, HeadDim = card.Hidden / card.Heads, NumHeads = card.Heads / tp, NumKvHeads = kv,
            HiddenDim = card.Intermediate / tp, VocabSize = (card.Vocab + tp - 1) / tp, NumLayers = layers, MaxSeqLen = maxSeqLen,
        };
    }

    private static List<CalibrationComparisonRow> CompareEntry(CalibrationEntry entry, ModelCard card, CalibrationComparisonOptions o, Stopwatch clock, TextWriter log)
    {
        var rows = new List<CalibrationComparisonRow>();
        int maxSeqLen = entry.Shapes.Max(s => Math.Max(s.Tokens, s.Context)) + 1;
        var small = RankConfig(card, entry.Tp, 1, maxSeqLen);
        if (small is null)
            return entry.Shapes.Select(s => new CalibrationComparisonRow(entry.Model, entry.Tp, s, null, $"heads do not split {entry.Tp} ways")).ToList();
        var big = small with { NumLayers = 1 + o.Layers };
        long bytesPerBlock = PagedKvCache.BytesPerBlock(small, o.BlockSize, o.DType) + PagedKvCache.BytesPerBlock(big, o.BlockSize, o.DType);
        long budgetBlocks = (long)(o.KvBudgetGib * (1L << 30)) / bytesPerBlock;
        int Blocks(CalibrationShape s) => s.Kind switch
        {
            "prefill" => s.Seqs * Ceil(s.Tokens, o.BlockSize),
            "decode" => s.Batch * Ceil(s.Context, o.BlockSize),
            _ => s.Batch * Ceil(s.Context, o.BlockSize) + Ceil(s.Tokens, o.BlockSize),
        };
        string? Unfit(CalibrationShape s) =>
            s.StepTokens > o.MaxStepTokens ? $"more tokens per step than --max-step-tokens {o.MaxStepTokens}"
            : Blocks(s) > budgetBlocks ? $"KV cache over the {o.KvBudgetGib} GiB budget"
            : null;
        var timed = entry.Shapes.Where(s => Unfit(s) is null).ToList();
        if (timed.Count == 0)
            return entry.Shapes.Select(s => new CalibrationComparisonRow(entry.Model, entry.Tp, s, null, Unfit(s))).ToList();

        int numBlocks = timed.Max(Blocks);
        log.WriteLine($"  {entry.Model} tp{entry.Tp}: rank of {small.NumHeads} heads ({small.NumKvHeads} KV), MLP {small.HiddenDim}; stacks of 1 and {big.NumLayers} layers, {numBlocks} KV blocks");
        using var one = CardModels.CreateRandom($"{entry.Model} tp{entry.Tp} rank", small, o.Device, o.DType, o.Seed);
        using var many = CardModels.CreateRandom($"{entry.Model} tp{entry.Tp} rank", big, o.Device, o.DType, o.Seed);
        using var oneCache = new PagedKvCache(small, numBlocks, o.BlockSize, o.Device, o.DType);
        using var manyCache = new PagedKvCache(big, numBlocks, o.BlockSize, o.Device, o.DType);
        foreach (var s in entry.Shapes)
        {
            string? why = Unfit(s) ?? (clock.Elapsed.TotalSeconds > o.BudgetSeconds ? "time budget spent" : null);
            if (why is not null)
            {
                rows.Add(new CalibrationComparisonRow(entry.Model, entry.Tp, s, null, why));
                continue;
            }
            var batch = Batch(s, o.BlockSize, small.VocabSize);
            try
            {
                double perLayer = (Median(many.Model, manyCache, batch, o) - Median(one.Model, oneCache, batch, o)) / o.Layers;
                rows.Add(new CalibrationComparisonRow(entry.Model, entry.Tp, s, perLayer * 1000, null));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One shape's failure (a kernel limit, device memory) must not cost the others of a one-shot GPU run.
                rows.Add(new CalibrationComparisonRow(entry.Model, entry.Tp, s, null, $"failed: {e.Message.Split('\n')[0]}"));
            }
        }
        return rows;
    }

    /// <summary>The shape as one step's chunks: decode rows at the end of their contexts, prompts from position 0, each on its own blocks.</summary>
    private static List<SequenceChunk> Batch(CalibrationShape s, int blockSize, int vocab)
    {
        var rng = new Random(11);
        var chunks = new List<SequenceChunk>();
        int next = 0;
        int[] Table(int tokens)
        {
            int n = Ceil(tokens, blockSize);
            var table = Enumerable.Range(next, n).ToArray();
            next += n;
            return table;
        }
        int[] Tokens(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        if (s.Kind != "prefill")
            for (int b = 0; b < s.Batch; b++) chunks.Add(new SequenceChunk(Tokens(1), s.Context - 1, Table(s.Context)));
        int prompts = s.Kind == "prefill" ? s.Seqs : s.Kind == "mixed" ? 1 : 0;
        for (int p = 0; p < prompts; p++) chunks.Add(new SequenceChunk(Tokens(s.Tokens), 0, Table(s.Tokens)));
        return chunks;
    }

    /// <summary>Median seconds of one forward (after a warm-up), the device drained before and after each.</summary>
    private static double Median(LlamaModel model, PagedKvCache cache, List<SequenceChunk> batch, CalibrationComparisonOptions o)
    {
        var times = new double[o.Repeats];
        for (int r = -1; r < o.Repeats; r++)
        {
            DeviceSelection.Synchronize(o.Device);
            long start = Stopwatch.GetTimestamp();
            using (model.Forward(batch, cache)) DeviceSelection.Synchronize(o.Device);
            if (r >= 0) times[r] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(times);
        return times[times.Length / 2];
    }

    private static int Ceil(int a, int b) => (a + b - 1) / b;
}
