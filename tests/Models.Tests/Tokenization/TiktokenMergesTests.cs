using System.Text;
using OServe.Models.Tokenization;
using Xunit;

namespace OServe.Models.Tests.Tokenization;

/// <summary>
/// GPT-2's tokenizer with long pre-tokens merged by the heap (<see cref="TiktokenMerges"/>) gives
/// exactly the ids Microsoft.ML.Tokenizers gives with its own quadratic loop, on long words of
/// letters, digits, punctuation and spaces, mixed scripts, and special tokens inside the text.
/// </summary>
public sealed class TiktokenMergesTests
{
    private static readonly MlTokenizer Gpt2 = TokenizerLoader.Gpt2();

    [Fact]
    public void Long_pretokens_encode_as_the_library_does()
    {
        var random = new Random(11);
        string[] alphabets = ["ab", "abcdefghij", "aeiou ", "0123456789", "!?.,;:-", "日本語", "ÄäÖöüß", " \t\n"];
        var texts = new List<string>
        {
            new('a', 1000), new(' ', 700), "x" + new string('-', 900) + "y", string.Concat(Enumerable.Repeat("ab", 400)),
            "Once upon a time <|endoftext|>" + new string('z', 600) + "<|endoftext|> the end",
            new string('9', 2000), "😀" + string.Concat(Enumerable.Repeat("😀", 300)),
        };
        for (int i = 0; i < 60; i++)
        {
            var alphabet = alphabets[i % alphabets.Length];
            var text = new StringBuilder();
            int length = random.Next(257, 2500);
            while (text.Length < length)
                text.Append(alphabet[random.Next(alphabet.Length)]);
            texts.Add(text.ToString());
            texts.Add("prefix " + text + " suffix, and more words");
        }
        foreach (var text in texts)
            Assert.Equal(Gpt2.Inner.EncodeToIds(text), Gpt2.Encode(text, addBos: false));
    }

    [Fact]
    public void Ordinary_text_takes_the_library_path_unchanged()
    {
        const string text = "Hello world, this is ordinary text with short words only.";
        Assert.Equal(Gpt2.Inner.EncodeToIds(text), Gpt2.Encode(text, addBos: false));
        Assert.Equal([Gpt2.BosId, .. Gpt2.Inner.EncodeToIds(text)], Gpt2.Encode(text, addBos: true));
    }

    [Fact]
    public void A_token_never_stands_for_more_bytes_than_MaxTokenBytes()
    {
        var text = string.Concat(Enumerable.Repeat("abc defg, hijk! 12345 ", 200)) + new string('q', 3000);
        var ids = Gpt2.Encode(text, addBos: false);
        Assert.True((long)ids.Count * Gpt2.MaxTokenBytes >= Encoding.UTF8.GetByteCount(text));
        Assert.InRange(Gpt2.MaxTokenBytes, 64, 256);
    }

    [Fact]
    public void A_cancelled_long_encode_stops()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => Gpt2.Encode(new string('a', 100_000), addBos: false, cancelled.Token));
    }
}
