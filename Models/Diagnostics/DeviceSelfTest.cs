using System.Diagnostics;
using OServe.Contracts;
using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Parallelism;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Diagnostics;

/// <summary>One check's outcome; <see cref="Skipped"/> says why it did not run.</summary>
public sealed record SelfTestResult(string Name, bool Passed, string Detail, double Seconds, bool Skipped = false);

/// <summary>
/// The model-side checks of the GPU path, runnable where no test SDK exists (<c>oserve selftest
/// --device cuda</c> in the GPU bundle) and from the test projects: the fused paged forward against
/// the contiguous reference, a mixed batch against its requests alone, tensor-parallel shards on one
/// device against the unsharded model, stories260K's greedy text on the device against the CPU's,
/// and real-size card shapes (head dim 128, grouped queries, 128k vocabulary) on a GPU. On the CPU
/// the same checks compare the fused path with the reference path.
/// </summary>
public static class DeviceSelfTest
{
    /// <summary>TinyModels' shape from the tests: 8 heads over 2 KV heads, untied, weights scaled so errors show.</summary>
    private static readonly LlamaConfig Tiny = new()
    {
        Dim = 64, HiddenDim = 96, NumLayers = 2, NumHeads = 8, NumKvHeads = 2, VocabSize = 101, MaxSeqLen = 128, RopeTheta = 500.0,
    };

    /// <param name="stories260K">directory holding stories260K.bin and tok512.bin; null skips that check.</param>
    /// <param name="cards">real model cards to run one layer of on a GPU (skipped on the CPU: too slow to build there).</param>
    public static IReadOnlyList<SelfTestResult> Run(Device device, string? stories260K, IReadOnlyList<ModelCard> cards, TextWriter log)
    {
        var results = new List<SelfTestResult>();
        void Check(string name, Func<(bool Passed, string Detail)> body)
        {
            var sw = Stopwatch.StartNew();
            SelfTestResult result;
            try
            {
                using var scope = NewDisposeScope();
                var (passed, detail) = body();
                result = new SelfTestResult(name, passed, detail, sw.Elapsed.TotalSeconds);
            }
            catch (SkipException e)
            {
                result = new SelfTestResult(name, true, e.Message, sw.Elapsed.TotalSeconds, Skipped: true);
            }
            catch (Exception e)
            {
                result = new SelfTestResult(name, false, $"{e.GetType().Name}: {e.Message}", sw.Elapsed.TotalSeconds);
            }
            results.Add(result);
            log.WriteLine($"{(result.Skipped ? "SKIP" : result.Passed ? "PASS" : "FAIL")} {name}: {result.Detail} ({result.Seconds:F1} s)");
        }

        Check("paged == contiguous (float32)", () => PagedEqualsContiguous(device, ScalarType.Float32));
        Check("paged == contiguous (bfloat16)", () => PagedEqualsContiguous(device, ScalarType.BFloat16));
        Check("mixed batch == each request alone", () => BatchEqualsAlone(device));
        foreach (var (tp, pp) in new[] { (2, 1), (4, 1), (2, 2) })
            Check($"tp{tp} x pp{pp} shards on one device == unsharded", () => ShardsEqualUnsharded(device, tp, pp));
        Check("stories260K greedy text on the device == CPU", () => Stories260K(device, stories260K));
        foreach (var card in cards)
            Check($"{card.Name} shape (1 layer, bf16) paged == contiguous", () => CardShape(device, card));
        return results;
    }

    private sealed class SkipException(string message) : Exception(message);

    private static LlamaModel TinyModel(Device device, ScalarType dtype, ForwardPath path)
    {
        using var weights = RandomWeights.Create(Tiny, 7);
        using var scaled = new InMemoryWeightSource(weights.Origin, LlamaWeightNames.Expected(Tiny).ToDictionary(
            e => e.Name, e => { using var t = weights.Load(e.Name); return e.Shape.Length == 1 ? t.clone() : t.mul(5f); }));
        return LlamaModel.Create(Tiny, scaled, device, dtype, path);
    }

    private static int[] Tokens(int count, int seed, int vocab)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => rng.Next(vocab)).ToArray();
    }

    /// <summary>
    /// Chunked prefill then decodes over a scrambled block table, each step's last logits against full
    /// recomputation in float32: equal to 1e-3 in float32, and in bfloat16 pointing the same way (cosine similarity above 0.98).
    /// </summary>
    private static (bool, string) PagedEqualsContiguous(Device device, ScalarType dtype)
    {
        using var model = TinyModel(device, dtype, ForwardPath.Fused);
        using var reference = TinyModel(device, ScalarType.Float32, ForwardPath.Reference);
        var tokens = Tokens(40, 1, Tiny.VocabSize);
        using var full = reference.ForwardFull(tokens);
        using var cache = new PagedKvCache(Tiny, 16, 4, device, dtype);
        int[] table = [11, 3, 14, 0, 7, 9, 2, 13, 5, 1];
        float worst = 0;
        double cosine = 1;
        int pos = 0;
        foreach (int n in new[] { 13, 7, 1, 1, 10, 1, 1, 1, 1, 1, 1, 1, 1 })
        {
            using var logits = model.Forward([new SequenceChunk(tokens[pos..(pos + n)], pos, table)], cache);
            pos += n;
            worst = Math.Max(worst, MaxAbsDiff(logits[0], full[pos - 1]));
            using var cos = nn.functional.cosine_similarity(logits[0].to(CPU), full[pos - 1].to(CPU), dim: 0);
            cosine = Math.Min(cosine, cos.item<float>());
        }
        bool passed = dtype == ScalarType.Float32 ? worst < 1e-3f : cosine > 0.98;
        return (passed, $"{ModelPath(model)}, {dtype}: largest logit difference {worst:G3}, lowest cosine similarity {cosine:F4} (logits std {Std(full):F2})");
    }

    /// <summary>A decode, a prompt chunk continuing a cached context and a fresh prompt in one step, against each recomputed alone.</summary>
    private static (bool, string) BatchEqualsAlone(Device device)
    {
        using var model = TinyModel(device, ScalarType.Float32, ForwardPath.Fused);
        var a = Tokens(17, 3, Tiny.VocabSize);
        var b = Tokens(25, 4, Tiny.VocabSize);
        var c = Tokens(9, 5, Tiny.VocabSize);
        using var cache = new PagedKvCache(Tiny, 24, 4, device, ScalarType.Float32);
        int[] ta = [5, 1, 17, 8, 20], tb = [2, 9, 12, 3, 22, 15, 6], tc = [19, 0, 11];
        using (model.Forward([new SequenceChunk(a[..16], 0, ta), new SequenceChunk(b[..10], 0, tb)], cache)) { }
        using var batched = model.Forward([new SequenceChunk([a[16]], 16, ta), new SequenceChunk(b[10..], 10, tb), new SequenceChunk(c, 0, tc)], cache);
        float worst = new[] { (a, 0), (b, 1), (c, 2) }.Max(x =>
        {
            using var full = model.ForwardFull(x.Item1);
            return MaxAbsDiff(batched[x.Item2], full[x.Item1.Length - 1]);
        });
        return (worst < 1e-3f, $"largest logit difference {worst:G3} over a decode, a continued chunk and a fresh prompt");
    }

    private static (bool, string) ShardsEqualUnsharded(Device device, int tp, int pp)
    {
        using var model = TinyModel(device, ScalarType.Float32, ForwardPath.Auto);
        var pool = DevicePool.Shared(tp * pp, device);
        using var single = new SingleDeviceLlama(model, ownsModel: false);
        using var replica = ParallelLlama.FromModel(model, pool.Devices.ToArray(), tp, pp);
        using var expected = Script(single);
        using var actual = Script(replica);
        float worst = MaxAbsDiff(expected, actual);
        return (worst < 1e-3f, $"{replica}: largest logit difference {worst:G3} over prefill, mixed and decode steps");
    }

    /// <summary>Two sequences through chunked prefill, a mixed step and batched decodes; every step's logits stacked.</summary>
    private static Tensor Script(IPagedLanguageModel model)
    {
        int[] a = Tokens(30, 3, Tiny.VocabSize), b = Tokens(30, 4, Tiny.VocabSize);
        int[] ta = [5, 1, 7, 3, 9], tb = [2, 8, 0, 6, 4];
        using var cache = model.CreateKvCache(numBlocks: 10, blockSize: 8);
        var rows = new List<Tensor>
        {
            model.Forward([new SequenceChunk(a[..11], 0, ta)], cache),
            model.Forward([new SequenceChunk(a[11..20], 11, ta), new SequenceChunk(b[..15], 0, tb)], cache),
            model.Forward([new SequenceChunk([a[20]], 20, ta), new SequenceChunk(b[15..21], 15, tb)], cache),
        };
        for (int i = 21; i < 29; i++)
            rows.Add(model.Forward([new SequenceChunk([a[i]], i, ta), new SequenceChunk([b[i]], i, tb)], cache));
        var all = cat(rows.ToArray(), 0).to(CPU);
        foreach (var r in rows) r.Dispose();
        return all;
    }

    private static (bool, string) Stories260K(Device device, string? directory)
    {
        string? checkpoint = directory is null ? null : Path.Combine(directory, "stories260K.bin");
        if (checkpoint is null || !File.Exists(checkpoint))
            throw new SkipException(directory is null ? "no stories260K directory given" : $"{checkpoint} not found");
        using var onCpu = ModelLoader.Load(checkpoint, CPU, ScalarType.Float32, forward: ForwardPath.Reference);
        using var onDevice = ModelLoader.Load(checkpoint, device, ScalarType.Float32, forward: ForwardPath.Fused);
        string cpuText = onCpu.Tokenizer.Decode(Greedy(onCpu.Model, onCpu.Tokenizer.BosId, 256));
        string deviceText = onDevice.Tokenizer.Decode(Greedy(onDevice.Model, onDevice.Tokenizer.BosId, 256));
        bool same = cpuText == deviceText;
        string start = deviceText.Length > 60 ? deviceText[..60] + "..." : deviceText;
        return (same && cpuText.StartsWith("Once upon a time", StringComparison.Ordinal),
            same ? $"{deviceText.Length} characters identical (fused path, float32): \"{start.ReplaceLineEndings(" ")}\""
                 : $"texts differ at character {FirstDifference(cpuText, deviceText)}");
    }

    /// <summary>run.c's loop: one token at a time from BOS, stopping when BOS comes back.</summary>
    private static List<int> Greedy(LlamaModel model, int bos, int steps)
    {
        int blocks = (steps + 15) / 16;
        using var cache = new PagedKvCache(model.Config, blocks, 16, model.Device, model.DType);
        var table = Enumerable.Range(0, blocks).ToArray();
        var generated = new List<int>();
        int token = bos;
        for (int pos = 0; pos < steps; pos++)
        {
            using var logits = model.Forward([new SequenceChunk([token], pos, table)], cache);
            using var best = logits[0].argmax();
            int next = (int)best.item<long>();
            if (next == bos) break;
            generated.Add(next);
            token = next;
        }
        return generated;
    }

    /// <summary>One layer of a real card in bf16 on the GPU: a batch of decodes after prefill against full recomputation, by cosine similarity.</summary>
    private static (bool, string) CardShape(Device device, ModelCard card)
    {
        if (device.type != DeviceType.CUDA) throw new SkipException("real-size shapes are checked on a GPU only (building them on the CPU takes minutes)");
        using var loaded = CardModels.CreateRandom(card, device, ScalarType.BFloat16, seed: 3, layers: 1, maxSeqLen: 256);
        var model = loaded.Model;
        var seqs = Enumerable.Range(0, 4).Select(i => Tokens(20 + 7 * i, 40 + i, card.Vocab)).ToArray();
        using var cache = new PagedKvCache(model.Config, 32, 16, device, ScalarType.BFloat16);
        var tables = Enumerable.Range(0, 4).Select(i => Enumerable.Range(0, 8).Select(j => j * 4 + (3 - i)).ToArray()).ToArray();
        using (model.Forward(seqs.Select((s, i) => new SequenceChunk(s[..^1], 0, tables[i])).ToArray(), cache)) { }
        using var step = model.Forward(seqs.Select((s, i) => new SequenceChunk([s[^1]], s.Length - 1, tables[i])).ToArray(), cache);
        double worst = 1;
        for (int i = 0; i < seqs.Length; i++)
        {
            using var full = model.ForwardFull(seqs[i]);
            using var cos = nn.functional.cosine_similarity(step[i], full[seqs[i].Length - 1], dim: 0);
            worst = Math.Min(worst, cos.item<float>());
        }
        bool finite = !step.isnan().any().item<bool>();
        return (finite && worst > 0.99, $"{ModelPath(model)}, head dim {model.Config.EffectiveHeadDim}, {model.Config.NumHeads}/{model.Config.NumKvHeads} heads, " +
                                        $"vocab {model.Config.VocabSize}: worst cosine similarity of 4 decode rows {worst:F4}");
    }

    private static string ModelPath(LlamaModel model) => $"{model.ForwardPath} path on {DeviceSelection.Describe(model.Device)}";

    private static float MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = a.to(ScalarType.Float32, CPU).sub(b.to(ScalarType.Float32, CPU)).abs().max();
        return d.item<float>();
    }

    private static float Std(Tensor t)
    {
        using var s = t.to(ScalarType.Float32).std();
        return s.item<float>();
    }

    private static int FirstDifference(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++) if (a[i] != b[i]) return i;
        return n;
    }
}
