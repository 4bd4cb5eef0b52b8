using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Models.Kv;
using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Tokenization;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests;

public sealed class CardModelsTests
{
    private static ModelCard Card(string file) => ContractYaml.ReadModelCard(Path.Combine(AppContext.BaseDirectory, "cards", file));

    [Fact]
    public void A_cards_shape_becomes_the_model_config()
    {
        var c = CardModels.ConfigOf(Card("llama-3-8b.yaml"), layers: 2, maxSeqLen: 300);
        Assert.Equal((4096, 14336, 2, 32, 8, 128256, 300, false), (c.Dim, c.HiddenDim, c.NumLayers, c.NumHeads, c.NumKvHeads, c.VocabSize, c.MaxSeqLen, c.TieWordEmbeddings));
        Assert.Equal(32, CardModels.ConfigOf(Card("llama-2-7b.yaml")).NumLayers);
        var opt = Assert.Throws<ArgumentException>(() => CardModels.ConfigOf(Card("opt-30b.yaml")));
        Assert.Contains("model card 'OPT-30B': architecture Opt has no engine implementation", opt.Message);
        Assert.Contains("layers: must be at least 1", Assert.Throws<ArgumentException>(() => CardModels.ConfigOf(Card("llama-2-7b.yaml"), layers: 0)).Message);
    }

    [Fact]
    public void Device_random_weights_are_drawn_per_name_with_the_random_init_and_repeat_for_a_seed()
    {
        var config = new LlamaConfig { Dim = 32, HiddenDim = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, VocabSize = 50, MaxSeqLen = 16 };
        var source = new DeviceRandomWeights(config, seed: 5);
        Assert.Equal(LlamaWeightNames.Expected(config).Count(), source.Names.Count);
        using var q = source.Load(LlamaWeightNames.Query(1), CPU, ScalarType.BFloat16);
        using var again = new DeviceRandomWeights(config, seed: 5).Load(LlamaWeightNames.Query(1), CPU, ScalarType.BFloat16);
        using var other = source.Load(LlamaWeightNames.Key(1), CPU, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, q.dtype);
        Assert.True(q.allclose(again, 0, 0));
        Assert.False(q.narrow(0, 0, 16).allclose(other, 0, 0));
        Assert.InRange(q.to(ScalarType.Float32).std().item<float>(), 0.015f, 0.025f);
        using var norm = source.Load(LlamaWeightNames.FinalNorm);
        Assert.Equal(1f, norm.min().item<float>());
        Assert.Contains("no tensor named 'nope'", Assert.Throws<InvalidDataException>(() => source.Load("nope")).Message);
    }

    [Fact]
    public void A_random_card_model_runs_and_its_folded_tokenizer_covers_the_vocabulary()
    {
        var card = Card("llama-2-7b.yaml") with { Hidden = 64, Intermediate = 96, Heads = 4, KvHeads = 2, Vocab = 300 };
        using var loaded = CardModels.CreateRandom(card, CPU, ScalarType.Float32, seed: 1, layers: 1, maxSeqLen: 64, path: ForwardPath.Fused);
        Assert.True(loaded.IsRandom);
        Assert.Contains("RANDOM weights", loaded.Description);
        var ids = loaded.Tokenizer.Encode("Hello there, a prompt of several words", addBos: true);
        Assert.All(ids, id => Assert.InRange(id, 0, 299));
        Assert.False(string.IsNullOrEmpty(loaded.Tokenizer.Decode([299, 5, 17])));
        using var cache = new PagedKvCache(loaded.Config, 4, 16, CPU, ScalarType.Float32);
        using var logits = loaded.Model.Forward([new SequenceChunk(ids, 0, [0, 1])], cache);
        Assert.Equal(new long[] { 1, 300 }, logits.shape);
    }

    [Fact]
    public void Folding_keeps_ids_inside_a_smaller_vocabulary()
    {
        var folded = new FoldedTokenizer(TokenizerLoader.Gpt2(), 1000);
        Assert.Equal(1000, folded.VocabSize);
        Assert.Equal(50256 % 1000, folded.EosId);
        Assert.All(folded.Encode("The quick brown fox jumps over the lazy dog", addBos: false), id => Assert.InRange(id, 0, 999));
    }
}
