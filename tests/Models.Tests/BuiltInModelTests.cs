using OServe.Models.Kv;
using OServe.Models.Tests.Llama;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests;

public sealed class BuiltInModelTests
{
    private static readonly BuiltInModelOptions Small = new() { Dim = 64, HiddenDim = 128, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxSeqLen = 64 };

    [Fact]
    public void SameSeedGivesTheSameModelAndADifferentSeedDoesNot()
    {
        using var a = BuiltInModel.Create(Small);
        using var b = BuiltInModel.Create(Small);
        using var c = BuiltInModel.Create(Small with { Seed = 99 });
        var tokens = a.Tokenizer.Encode("Hello there", addBos: true);
        using var la = a.Model.ForwardFull(tokens);
        using var lb = b.Model.ForwardFull(tokens);
        using var lc = c.Model.ForwardFull(tokens);
        Assert.Equal(0f, Greedy.MaxAbsDiff(la, lb));
        Assert.True(Greedy.MaxAbsDiff(la, lc) > 1e-3f);
    }

    [Fact]
    public void SaysItIsRandomAndUsesTheRealGpt2Tokenizer()
    {
        using var m = BuiltInModel.Create(Small);
        Assert.True(m.IsRandom);
        Assert.Contains("RANDOM", m.Description);
        Assert.Equal(50257, m.Config.VocabSize);
        Assert.Equal("The cat sat.", m.Tokenizer.Decode(m.Tokenizer.Encode("The cat sat.", addBos: true)));
        using var cache = new PagedKvCache(m.Config, 4, 16, CPU, ScalarType.Float32);
        using var logits = m.Model.Forward([new SequenceChunk(m.Tokenizer.Encode("Hi", addBos: true), 0, [3])], cache);
        Assert.Equal(new long[] { 1, 50257 }, logits.shape);
        Assert.False(logits.isnan().any().item<bool>());
    }

    [Fact]
    public void A_smaller_vocabulary_folds_the_gpt2_ids_onto_it_and_the_lm_head_shrinks_with_it()
    {
        using var m = BuiltInModel.Create(Small with { VocabSize = 512 });
        Assert.Equal(512, m.Config.VocabSize);
        Assert.Equal(512, m.Tokenizer.VocabSize);
        Assert.Contains("folded onto 512", m.Description);
        var ids = m.Tokenizer.Encode("The cat sat on the mat, again and again.", addBos: true);
        Assert.All(ids, id => Assert.InRange(id, 0, 511));
        Assert.Equal(BuiltInModel.ConfigOf(Small with { VocabSize = 512 }).ParameterCount, m.Config.ParameterCount);
        Assert.True(m.Config.ParameterCount < BuiltInModel.ConfigOf(Small).ParameterCount);
        Assert.Equal(m.Config, BuiltInModel.Shape(Small with { VocabSize = 512 }).Config); // a weightless front end sees the same shape
        using var cache = new PagedKvCache(m.Config, 4, 16, CPU, ScalarType.Float32);
        using var logits = m.Model.Forward([new SequenceChunk(ids, 0, [0, 1, 2])], cache);
        Assert.Equal(new long[] { 1, 512 }, logits.shape);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(50258)]
    public void A_vocabulary_outside_gpt2s_range_is_refused_with_the_number(int vocab)
    {
        var e = Assert.Throws<ArgumentException>(() => BuiltInModel.Create(Small with { VocabSize = vocab }));
        Assert.Contains(vocab.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
        Assert.Contains("VocabSize", e.Message);
    }

    [Fact]
    public void ItsShapeAndTokenizerComeWithoutBuildingIt()
    {
        var options = new BuiltInModelOptions { Dim = 64, HiddenDim = 160, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxSeqLen = 128, Seed = 3 };
        using var built = BuiltInModel.Create(options);
        var shape = BuiltInModel.Shape(options);
        Assert.Equal(built.Config, shape.Config);
        Assert.Equal(built.Name, shape.Name);
        Assert.Equal(built.Tokenizer.Encode("Hi there", true), shape.Tokenizer.Encode("Hi there", true));
    }
}
