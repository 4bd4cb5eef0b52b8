using OServe.Models.Tests.Loading;
using OServe.Models.Tokenization;
using Xunit;

namespace OServe.Models.Tests.Tokenization;

public sealed class TokenizerTests
{
    private static Llama2cTokenizer Tok512()
    {
        SharedData.SkipUnlessStories260K();
        return Llama2cTokenizer.Load(Path.Combine(SharedData.Stories260K, "tok512.bin"), 512);
    }

    [SkippableFact]
    public void Llama2cEncodeMergesByScoreAndDecodesBack()
    {
        var tok = Tok512();
        var ids = tok.Encode("Once upon a time", addBos: true);
        Assert.Equal(1, ids[0]);
        // BPE merged the 16 characters (+ dummy prefix) into far fewer pieces, each a real vocabulary entry.
        Assert.True(ids.Count < 10, $"{ids.Count} tokens");
        Assert.Equal(" Once upon a time", string.Concat(ids.Skip(1).Select(tok.Piece)));
        Assert.Equal("Once upon a time", tok.Decode(ids));
        Assert.Equal(ids.Skip(1), tok.Encode("Once upon a time", addBos: false));
        Assert.Empty(tok.Encode("", addBos: false));
    }

    [SkippableFact]
    public void Llama2cByteFallbackCoversCharactersOutsideTheVocabulary()
    {
        var tok = Tok512();
        var ids = tok.Encode("☃", addBos: false);
        // "☃" is E2 98 83 in UTF-8; unknown code points become byte tokens id = byte + 3 (after the dummy-prefix space).
        Assert.Equal([0xE2 + 3, 0x98 + 3, 0x83 + 3], ids.Skip(1));
        Assert.Equal("☃", tok.Decode(ids));
        Assert.Equal("Lily saw ☃ and 😀.", tok.Decode(tok.Encode("Lily saw ☃ and 😀.", addBos: true)));
    }

    [SkippableFact]
    public void Llama2cTokenizerShorterThanTheVocabularyIsRejected()
    {
        SharedData.SkipUnlessStories260K();
        var e = Assert.Throws<InvalidDataException>(() => Llama2cTokenizer.Load(Path.Combine(SharedData.Stories260K, "tok512.bin"), 4096));
        Assert.Contains("wrong tokenizer for this model?", e.Message);
    }

    [Fact]
    public void Gpt2TiktokenRoundTripsAndKnowsItsSpecialToken()
    {
        var tok = TokenizerLoader.Gpt2();
        Assert.Equal(50257, tok.VocabSize);
        var ids = tok.Encode("Hello world", addBos: false);
        Assert.Equal([15496, 995], ids);
        Assert.Equal("Hello world", tok.Decode([.. ids, tok.EosId]));
        Assert.Equal(50256, tok.Encode("x", addBos: true)[0]);
    }

    [Fact]
    public void HuggingFaceByteLevelBpeJsonEncodesWithItsMerges()
    {
        string path = Path.Combine(Directory.CreateTempSubdirectory("oserve-tok-").FullName, "tokenizer.json");
        HuggingFaceLoadTests.WriteByteLevelTokenizerJson(path);
        var tok = TokenizerLoader.HuggingFaceJson(path, bosId: null, eosId: 265);
        var ids = tok.Encode("hello world", addBos: false);
        Assert.Equal(2, ids.Count); // "hello" and "Ġworld" via the merges
        Assert.Equal("hello world", tok.Decode(ids));
        Assert.Equal("hé!", tok.Decode(tok.Encode("hé!", addBos: false)));
    }

    [SkippableFact]
    public void IncrementalDetokenizerHoldsSplitCharactersUntilComplete()
    {
        var tok = Tok512();
        const string text = "Lily said: ☃ 😀 ok";
        AssertStreams(tok, text, prompt: [tok.BosId]);
    }

    [Fact]
    public void IncrementalDetokenizerWorksForTiktokenBytePieces()
    {
        var tok = TokenizerLoader.Gpt2();
        // CJK and emoji are split across byte-level tokens in GPT-2.
        AssertStreams(tok, " 日本語 😀 done", prompt: tok.Encode("Say:", addBos: false));
    }

    private static void AssertStreams(ITokenizer tok, string text, IReadOnlyList<int> prompt)
    {
        var ids = tok.Encode(text, addBos: false);
        Assert.True(ids.Count > text.EnumerateRunes().Count() - 4, "test text should need byte tokens");
        var detok = new IncrementalDetokenizer(tok, prompt);
        var deltas = ids.Select(detok.Add).ToList();
        deltas.Add(detok.Flush());
        Assert.All(deltas, d => Assert.DoesNotContain('\uFFFD', d));
        Assert.Contains("", deltas); // some token completed nothing on its own
        string expected = tok.Decode([.. prompt, .. ids])[tok.Decode(prompt).Length..];
        Assert.Equal(expected, string.Concat(deltas));
        Assert.Equal(expected, detok.Text);
    }
}
