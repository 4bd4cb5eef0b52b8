using System.Text.Json;
using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Tests.Llama;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Loading;

public sealed class HuggingFaceLoadTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("oserve-hf-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [Theory]
    [InlineData(ScalarType.Float32, false)]
    [InlineData(ScalarType.BFloat16, true)]
    [InlineData(ScalarType.Float16, true)]
    public void ShardedDirectoryLoadsToTheSameModel(ScalarType storedDtype, bool sharded)
    {
        using var original = TinyModels.Random(seed: 21);
        WriteHfDirectory(original, storedDtype, sharded);

        using var loaded = ModelLoader.Load(dir, CPU, ScalarType.Float32);
        Assert.False(loaded.IsRandom);
        Assert.Equal(original.Config with { NormEps = loaded.Config.NormEps }, loaded.Config);
        var tokens = TinyModels.Tokens(10, 22);
        using var expected = original.ForwardFull(tokens);
        using var actual = loaded.Model.ForwardFull(tokens);
        float tolerance = storedDtype == ScalarType.Float32 ? 1e-5f : 0.5f;
        Assert.True(Greedy.MaxAbsDiff(expected, actual) < tolerance);
        Assert.Equal("bpe tokenizer.json", loaded.Tokenizer.Name);
    }

    [SkippableFact]
    public void Stories260KConvertedToHuggingFaceLayoutGivesTheSameLogits()
    {
        // llama2.c q/k rows are permuted to rotate-half at load; an HF export stores them that way, so both paths must agree.
        SharedData.SkipUnlessStories260K();
        using var fromBin = ModelLoader.Load(Path.Combine(SharedData.Stories260K, "stories260K.bin"), CPU, ScalarType.Float32);
        WriteHfDirectory(fromBin.Model, ScalarType.Float32, sharded: false);
        using var fromHf = ModelLoader.Load(dir, CPU, ScalarType.Float32);
        int[] tokens = [1, 403, 407, 261, 378, 267, 43];
        using var a = fromBin.Model.ForwardFull(tokens);
        using var b = fromHf.Model.ForwardFull(tokens);
        Assert.True(Greedy.MaxAbsDiff(a, b) < 1e-5f);
    }

    [Fact]
    public void TheShapeAndTokenizerAreReadWithoutTheWeights()
    {
        using var original = TinyModels.Random(seed: 21);
        WriteHfDirectory(original, ScalarType.Float32, sharded: true);
        using var loaded = ModelLoader.Load(dir, CPU, ScalarType.Float32);
        // No weights to read: a front end that runs no replica needs none.
        foreach (var weights in Directory.GetFiles(dir, "*.safetensors*"))
            File.Delete(weights);
        var shape = ModelLoader.ReadShape(dir);
        Assert.Equal(loaded.Config, shape.Config);
        Assert.Equal(loaded.Name, shape.Name);
        Assert.Equal(loaded.Tokenizer.Name, shape.Tokenizer.Name);
        Assert.Contains("no weights", shape.Description);
    }

    [SkippableFact]
    public void TheShapeOfALlama2cCheckpointIsItsHeaderAndTokenizer()
    {
        SharedData.SkipUnlessStories260K();
        var bin = Path.Combine(SharedData.Stories260K, "stories260K.bin");
        using var loaded = ModelLoader.Load(bin, CPU, ScalarType.Float32);
        var shape = ModelLoader.ReadShape(bin);
        Assert.Equal(loaded.Config, shape.Config);
        Assert.Equal("stories260K", shape.Name);
        Assert.Equal(loaded.Tokenizer.Encode("Once upon a time", true), shape.Tokenizer.Encode("Once upon a time", true));
    }

    [Fact]
    public void IndexPointingAtAMissingShardIsNamed()
    {
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), """{"weight_map":{"lm_head.weight":"model-00009.safetensors"}}""");
        var e = Assert.Throws<FileNotFoundException>(() => SafetensorsWeightSource.OpenDirectory(dir));
        Assert.Contains("shard 'model-00009.safetensors' (holding 'lm_head.weight') not found", e.Message);
    }

    [Fact]
    public void UnsupportedConfigIsRejectedNamingTheField()
    {
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type":"gpt2","hidden_size":8}""");
        var e = Assert.Throws<InvalidDataException>(() => HuggingFaceConfig.Read(Path.Combine(dir, "config.json")));
        Assert.Contains("model_type 'gpt2' is not supported", e.Message);
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"model_type":"llama","hidden_size":8}""");
        e = Assert.Throws<InvalidDataException>(() => HuggingFaceConfig.Read(Path.Combine(dir, "config.json")));
        Assert.Contains("field 'num_attention_heads' is missing", e.Message);
    }

    [Fact]
    public void WrongTensorShapeIsRejectedNamingTheTensor()
    {
        using var original = TinyModels.Random(seed: 3);
        WriteHfDirectory(original, ScalarType.Float32, sharded: false);
        var cfgPath = Path.Combine(dir, "config.json");
        File.WriteAllText(cfgPath, File.ReadAllText(cfgPath).Replace("\"intermediate_size\":96", "\"intermediate_size\":80"));
        var e = Assert.Throws<InvalidDataException>(() => ModelLoader.Load(dir, CPU, ScalarType.Float32));
        Assert.Contains("tensor 'model.layers.0.mlp.gate_proj.weight' has shape [96, 64], the config expects [80, 64]", e.Message);
    }

    [Fact]
    public void UnknownPathsGetAClearError()
    {
        string txt = Path.Combine(dir, "weights.txt");
        File.WriteAllText(txt, "x");
        var e = Assert.Throws<InvalidDataException>(() => ModelLoader.Load(txt, CPU, ScalarType.Float32));
        Assert.Contains("not a model this loader knows", e.Message);
        Assert.Throws<FileNotFoundException>(() => ModelLoader.Load(Path.Combine(dir, "nope"), CPU, ScalarType.Float32));
    }

    private void WriteHfDirectory(LlamaModel model, ScalarType dtype, bool sharded)
    {
        var c = model.Config;
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model_type"] = "llama", ["hidden_size"] = c.Dim, ["intermediate_size"] = c.HiddenDim, ["num_hidden_layers"] = c.NumLayers,
            ["num_attention_heads"] = c.NumHeads, ["num_key_value_heads"] = c.NumKvHeads, ["vocab_size"] = c.VocabSize,
            ["max_position_embeddings"] = c.MaxSeqLen, ["rope_theta"] = c.RopeTheta, ["rms_norm_eps"] = c.NormEps,
            ["tie_word_embeddings"] = c.TieWordEmbeddings, ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        }));
        WriteByteLevelTokenizerJson(Path.Combine(dir, "tokenizer.json"));
        var tensors = model.Weights.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.to(dtype))).ToList();
        if (!sharded)
        {
            SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
            return;
        }
        var map = new Dictionary<string, string>();
        for (int shard = 0; shard < 2; shard++)
        {
            string file = $"model-0000{shard + 1}-of-00002.safetensors";
            var part = tensors.Where((_, i) => i % 2 == shard).ToList();
            SafetensorsWriter.Write(Path.Combine(dir, file), part);
            foreach (var t in part) map[t.Key] = file;
        }
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"), JsonSerializer.Serialize(new { metadata = new { }, weight_map = map }));
    }

    /// <summary>A byte-level BPE tokenizer.json in the Hugging Face layout: 256 byte symbols plus a few merges.</summary>
    internal static void WriteByteLevelTokenizerJson(string path)
    {
        var vocab = ByteLevelAlphabet().Select((s, i) => (s, i)).ToDictionary(x => x.s, x => x.i);
        string[] merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];
        foreach (var m in merges) vocab[m.Replace(" ", "")] = vocab.Count;
        vocab["<|end|>"] = vocab.Count;
        var json = new
        {
            version = "1.0",
            added_tokens = new[] { new { id = vocab["<|end|>"], content = "<|end|>", special = true } },
            pre_tokenizer = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            model = new { type = "BPE", vocab, merges },
        };
        File.WriteAllText(path, JsonSerializer.Serialize(json));
    }

    /// <summary>GPT-2's bytes_to_unicode table in byte order.</summary>
    private static IEnumerable<string> ByteLevelAlphabet()
    {
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range('¡', '¬' - '¡' + 1)).Concat(Enumerable.Range('®', 'ÿ' - '®' + 1)).ToHashSet();
        int extra = 0;
        for (int b = 0; b < 256; b++) yield return printable.Contains(b) ? ((char)b).ToString() : ((char)(256 + extra++)).ToString();
    }
}
