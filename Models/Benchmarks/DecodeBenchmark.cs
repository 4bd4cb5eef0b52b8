using System.Diagnostics;
using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Benchmarks;

/// <summary>
/// Decode throughput of a random ~100M-parameter Llama against this machine's memory-bandwidth
/// bound: at batch 1 a decode step must stream every weight once, so tokens/s cannot exceed
/// bandwidth / weight bytes per step. Batch 32 shares that stream across 32 sequences, so its
/// aggregate tokens/s should be many times batch 1's.
/// </summary>
public static class DecodeBenchmark
{
    /// <summary>Tokens/s from the median step; BestStepMilliseconds shows what an uncontended step achieves on a shared machine.</summary>
    public sealed record Result(ScalarType DType, int Batch, double TokensPerSecond, double StepMilliseconds, double BestStepMilliseconds, double BoundTokensPerSecond);

    public static int Run(DecodeBenchmarkOptions options, TextWriter output)
    {
        torch.set_num_threads(options.Threads);
        var config = new LlamaConfig
        {
            Dim = options.Dim, HiddenDim = options.HiddenDim, NumLayers = options.NumLayers, NumHeads = options.NumHeads,
            NumKvHeads = options.NumKvHeads, VocabSize = options.VocabSize, TieWordEmbeddings = true,
            MaxSeqLen = options.ContextTokens + options.WarmupSteps + options.Steps + 1,
        };
        config.Validate("decode benchmark options");
        output.WriteLine($"decode benchmark: {config.ParameterCount / 1e6:F1}M parameters (dim {config.Dim}, {config.NumLayers} layers, " +
            $"hidden {config.HiddenDim}, vocab {config.VocabSize}), context {options.ContextTokens} tokens, {options.Steps} timed steps, " +
            $"{options.Threads} threads, TorchSharp {torch.__version__}");

        if (typeof(DecodeBenchmark).Assembly.GetCustomAttributes(typeof(DebuggableAttribute), false) is [DebuggableAttribute { IsJITOptimizerDisabled: true }])
            output.WriteLine("WARNING: OServe.Models is a Debug build, so its CPU kernels run unoptimised; build with -c Release for meaningful numbers");
        string waitPolicy = Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(unset)";
        output.WriteLine($"OMP_WAIT_POLICY={waitPolicy}" + (options.Threads > 1 && !waitPolicy.Equals("PASSIVE", StringComparison.OrdinalIgnoreCase)
            ? "; on a shared machine set OMP_WAIT_POLICY=PASSIVE before starting (spinning OpenMP threads stall when a core is busy)" : ""));
        double bandwidth = MeasureBandwidth(options.BandwidthBytes, output);
        var results = new List<Result>();
        using var weights = RandomWeights.Create(config, options.Seed);
        foreach (var dtype in options.DTypes)
        {
            using var model = LlamaModel.Create(config, weights, CPU, dtype);
            double bytesPerStep = (double)config.ParametersReadPerStep * PagedKvCache.ElementSize(dtype);
            double bound = bandwidth / bytesPerStep;
            foreach (int batch in options.BatchSizes)
            {
                var steps = MeasureDecode(model, options, batch);
                double median = steps.Order().ElementAt(steps.Count / 2);
                results.Add(new Result(dtype, batch, batch / median, 1000 * median, 1000 * steps.Min(), bound));
            }
        }
        PrintTable(results, config, bandwidth, output);
        return 0;
    }

    /// <summary>Read bandwidth in bytes/s: the best of several full sums over a buffer far larger than the caches.</summary>
    public static double MeasureBandwidth(long bytes, TextWriter output)
    {
        using var noGrad = no_grad();
        using var buffer = ones(bytes / 4, ScalarType.Float32);
        using var target = empty_like(buffer);
        double bestRead = 0, bestCopy = 0;
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var s = buffer.sum()) s.item<float>();
            bestRead = Math.Max(bestRead, bytes / sw.Elapsed.TotalSeconds);
            sw.Restart();
            target.copy_(buffer);
            bestCopy = Math.Max(bestCopy, 2.0 * bytes / sw.Elapsed.TotalSeconds);
        }
        output.WriteLine($"memory bandwidth: read (sum) {bestRead / 1e9:F1} GB/s, copy (read+write) {bestCopy / 1e9:F1} GB/s; the bound uses read");
        return bestRead;
    }

    /// <returns>Seconds of each timed step.</returns>
    private static List<double> MeasureDecode(LlamaModel model, DecodeBenchmarkOptions o, int batch)
    {
        // All sequences share the prefilled prompt's blocks (as prefix caching would) and own their decode blocks.
        int promptBlocks = (o.ContextTokens + o.BlockSize - 1) / o.BlockSize;
        int totalTokens = o.ContextTokens + o.WarmupSteps + o.Steps;
        int blocksPerSeq = (totalTokens + o.BlockSize - 1) / o.BlockSize;
        int ownBlocks = blocksPerSeq - promptBlocks + 1; // +1: the prompt's last, partly filled block is copied per sequence
        using var cache = new PagedKvCache(model.Config, promptBlocks + batch * ownBlocks, o.BlockSize, model.Device, model.DType);
        var rng = new Random(1);
        var prompt = Enumerable.Range(0, o.ContextTokens).Select(_ => rng.Next(model.Config.VocabSize)).ToArray();
        var tables = new int[batch][];
        for (int b = 0; b < batch; b++)
        {
            int fullPromptBlocks = o.ContextTokens / o.BlockSize;
            tables[b] = [.. Enumerable.Range(0, fullPromptBlocks), .. Enumerable.Range(promptBlocks + b * ownBlocks, blocksPerSeq - fullPromptBlocks)];
        }
        // Prefill the shared prompt through sequence 0's table, then copy its partial last block into every other sequence's.
        using (model.Forward([new SequenceChunk(prompt, 0, tables[0])], cache)) { }
        int partial = o.ContextTokens / o.BlockSize;
        if (o.ContextTokens % o.BlockSize != 0)
        {
            for (int l = 0; l < model.Config.NumLayers; l++)
            {
                for (int b = 1; b < batch; b++)
                {
                    cache.Keys(l)[tables[b][partial]].copy_(cache.Keys(l)[tables[0][partial]]);
                    cache.Values(l)[tables[b][partial]].copy_(cache.Values(l)[tables[0][partial]]);
                }
            }
        }

        var next = Enumerable.Range(0, batch).Select(b => prompt[b % prompt.Length]).ToArray();
        var chunks = new SequenceChunk[batch];
        double Step(int position)
        {
            for (int b = 0; b < batch; b++) chunks[b] = new SequenceChunk([next[b]], position, tables[b]);
            var sw = Stopwatch.StartNew();
            using var logits = model.Forward(chunks, cache);
            using var argmax = logits.argmax(-1);
            var ids = argmax.data<long>().ToArray();
            double seconds = sw.Elapsed.TotalSeconds;
            for (int b = 0; b < batch; b++) next[b] = (int)ids[b];
            return seconds;
        }
        int pos = o.ContextTokens;
        for (int i = 0; i < o.WarmupSteps; i++) Step(pos++);
        var times = new List<double>(o.Steps);
        for (int i = 0; i < o.Steps; i++) times.Add(Step(pos++));
        return times;
    }

    private static void PrintTable(List<Result> results, LlamaConfig config, double bandwidth, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine("dtype      batch   step ms   best ms    tokens/s   bound tok/s   of bound   vs batch 1");
        foreach (var r in results)
        {
            var single = results.FirstOrDefault(x => x.DType == r.DType && x.Batch == 1);
            string vsOne = single is null ? "-" : $"{r.TokensPerSecond / single.TokensPerSecond:F1}x";
            string ofBound = r.Batch == 1 ? $"{100 * r.TokensPerSecond / r.BoundTokensPerSecond:F0}%" : $"{100 * r.TokensPerSecond / r.BoundTokensPerSecond / r.Batch:F0}%/seq";
            output.WriteLine($"{r.DType,-10} {r.Batch,5} {r.StepMilliseconds,9:F1} {r.BestStepMilliseconds,9:F1} {r.TokensPerSecond,11:F1} {r.BoundTokensPerSecond,13:F1} {ofBound,10} {vsOne,12}");
        }
        output.WriteLine();
        output.WriteLine($"bound = read bandwidth {bandwidth / 1e9:F1} GB/s / weight bytes per step ({config.ParametersReadPerStep / 1e6:F1}M parameters x dtype size)");
        output.WriteLine("step ms is the median step (tokens/s uses it), best ms the fastest; a large gap means other work shared the cores");
        output.WriteLine("targets: batch 1 >= 60% of bound; batch 32 aggregate >= 8x batch 1");
    }
}
