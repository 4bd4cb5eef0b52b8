using OServe.Engine.Benchmarking;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

public sealed class PromptBuilderTests
{
    /// <summary>One token per word, three for words of more than five letters, plus a BOS: a small-vocabulary SentencePiece in miniature.</summary>
    private sealed class SmallVocabTokenizer : IBenchTokenizer
    {
        public string Id => "small";
        public int? MaxModelLen => null;
        public ValueTask<int> CountAsync(string text, CancellationToken cancellationToken) =>
            ValueTask.FromResult(1 + text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Sum(w => w.Length > 5 ? 3 : 1));
    }

    [Fact]
    public async Task Gpt2PromptsHaveExactlyTheAskedLengths()
    {
        var tokenizer = new Gpt2BenchTokenizer();
        var builder = await PromptBuilder.CreateAsync(tokenizer, CancellationToken.None);
        int[] lengths = [1, 2, 7, 100, 1000, 3000];
        var set = await builder.BuildAsync(lengths, seed: 1, CancellationToken.None);

        Assert.Equal(0, builder.NumSpecialTokens);
        Assert.Equal(0, set.NumMismatched);
        Assert.Equal(lengths, set.PromptLens);
        for (var i = 0; i < lengths.Length; i++)
            Assert.Equal(lengths[i], await tokenizer.CountAsync(set.Prompts[i], CancellationToken.None));
        Assert.Equal(set.Prompts, (await builder.BuildAsync(lengths, seed: 1, CancellationToken.None)).Prompts);
        Assert.NotEqual(set.Prompts[3], (await builder.BuildAsync(lengths, seed: 2, CancellationToken.None)).Prompts[3]);
    }

    [Fact]
    public async Task SpecialTokensAndMultiTokenWordsAreAccountedFor()
    {
        var tokenizer = new SmallVocabTokenizer();
        var builder = await PromptBuilder.CreateAsync(tokenizer, CancellationToken.None);
        var set = await builder.BuildAsync([1, 2, 3, 50, 333], seed: 5, CancellationToken.None);

        Assert.Equal(1, builder.NumSpecialTokens);
        Assert.Equal(1, set.NumClamped); // one token cannot hold a BOS and a word
        Assert.Equal([2, 2, 3, 50, 333], set.PromptLens);
        Assert.Equal(0, set.NumMismatched);
        Assert.Contains(set.Prompts[4].Split(' '), w => w.Length > 5);
    }
}
