using System.Text;
using OServe.Models.Tokenization;
using Xunit;

namespace OServe.Models.Tests.Tokenization;

/// <summary>
/// The heap encoder of <see cref="Llama2cTokenizer"/> against run.c's quadratic scan
/// (<see cref="Llama2cReferenceEncoder"/>): same tokens on random and real text, with synthetic
/// vocabularies built to provoke ties, NaN and infinite scores, and with stories260K's tok512.bin.
/// </summary>
public sealed class Llama2cEncodeTests
{
    private const string Alphabet = "aabbcdeeefghiijklmnoopqrstuuvwxyz  ,.!?'\n\tAEIOUé日本😀☃\u0000";

    [Fact]
    public void Synthetic_vocabularies_encode_as_the_quadratic_scan_does()
    {
        for (int seed = 0; seed < 6; seed++)
        {
            var random = new Random(seed);
            var tok = SyntheticTokenizer(random, numMerges: 300, scoreLevels: seed % 2 == 0 ? 5 : 1000);
            for (int i = 0; i < 300; i++)
            {
                // Half the texts use three characters only, so merges chain and equal scores compete.
                string text = RandomText(random, random.Next(0, 120), i % 2 == 0 ? "ab " : Alphabet);
                bool addBos = random.Next(2) == 0;
                Assert.Equal(Llama2cReferenceEncoder.Encode(tok, text, addBos), tok.Encode(text, addBos));
            }
        }
    }

    [SkippableFact]
    public void Tok512_encodes_random_and_real_text_as_the_quadratic_scan_does()
    {
        SharedData.SkipUnlessStories260K();
        var tok = Llama2cTokenizer.Load(Path.Combine(SharedData.Stories260K, "tok512.bin"), 512);
        var random = new Random(42);
        var texts = new List<string> { "", " ", "  ", "a", "Once upon a time", "Lily's mom said, \"Lily, let's go to the park.\"" };
        texts.AddRange(File.ReadAllText(Path.Combine(SharedData.Stories260K, "stories260K.md")).Split("\n\n"));
        for (int i = 0; i < 400; i++) texts.Add(RandomText(random, random.Next(0, 300)));
        // Runs of one letter make long chains of equal-score merges: the tie rule decides everything.
        texts.AddRange(["aaaaaaaaaaaaaaaaaaaaaaaaa", "the the the the the the", new string(' ', 37), "ababababababababab"]);
        foreach (var text in texts)
            foreach (bool addBos in new[] { true, false })
                Assert.Equal(Llama2cReferenceEncoder.Encode(tok, text, addBos), tok.Encode(text, addBos));
    }

    [SkippableFact]
    public void A_token_never_stands_for_more_bytes_than_MaxTokenBytes()
    {
        SharedData.SkipUnlessStories260K();
        var tok = Llama2cTokenizer.Load(Path.Combine(SharedData.Stories260K, "tok512.bin"), 512);
        var random = new Random(7);
        for (int i = 0; i < 200; i++)
        {
            string text = RandomText(random, random.Next(1, 400));
            int numTokens = tok.Encode(text, addBos: false).Count;
            // The dummy-prefix space is text too.
            Assert.True((long)numTokens * tok.MaxTokenBytes >= Encoding.UTF8.GetByteCount(text) + 1,
                $"{numTokens} tokens x {tok.MaxTokenBytes} bytes < {Encoding.UTF8.GetByteCount(text) + 1} bytes");
        }
    }

    [Fact]
    public void A_cancelled_encode_stops()
    {
        var tok = SyntheticTokenizer(new Random(1), numMerges: 50, scoreLevels: 10);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => tok.Encode(new string('a', 100_000), addBos: true, cancelled.Token));
    }

    [Fact]
    public void BOS_and_EOS_both_end_a_llama2c_generation()
    {
        var tok = SyntheticTokenizer(new Random(1), numMerges: 1, scoreLevels: 1);
        Assert.Equal([2, 1], tok.EndTokenIds);
    }

    /// <summary>
    /// A tokenizer.bin with the llama2.c layout: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, 256 byte tokens, single
    /// characters, then random merges of existing pieces with scores drawn from a few levels (many
    /// ties), a few NaN and infinite scores, and duplicate pieces (the first one wins the lookup).
    /// </summary>
    private static Llama2cTokenizer SyntheticTokenizer(Random random, int numMerges, int scoreLevels)
    {
        var pieces = new List<byte[]> { "<unk>"u8.ToArray(), "<s>"u8.ToArray(), "</s>"u8.ToArray() };
        for (int b = 0; b < 256; b++) pieces.Add(Encoding.ASCII.GetBytes($"<0x{b:X2}>"));
        foreach (var rune in Alphabet.EnumerateRunes().Distinct().Where(r => r.Value != 'é'))
            pieces.Add(Encoding.UTF8.GetBytes(rune.ToString()));
        int numBase = pieces.Count;
        var small = new List<byte[]> { "a"u8.ToArray(), "b"u8.ToArray(), " "u8.ToArray() };
        for (int i = 0; i < numMerges; i++)
        {
            // Half the merges combine pieces made of a, b and space only.
            var from = i % 2 == 0 ? small : pieces;
            int lo = i % 2 == 0 ? 0 : numBase - 20;
            var left = from[random.Next(lo, from.Count)];
            var right = from[random.Next(lo, from.Count)];
            if (left.Length + right.Length > 16) continue;
            byte[] merged = [.. left, .. right];
            pieces.Add(merged);
            if (i % 2 == 0) small.Add(merged);
        }
        var scores = new float[pieces.Count];
        for (int i = 0; i < scores.Length; i++)
            scores[i] = random.Next(40) switch
            {
                0 => float.NaN,
                1 => float.NegativeInfinity,
                2 => float.PositiveInfinity,
                _ => -random.Next(scoreLevels),
            };
        string path = Path.Combine(Directory.CreateTempSubdirectory("oserve-tok-").FullName, "tokenizer.bin");
        using (var writer = new BinaryWriter(File.Create(path)))
        {
            writer.Write(pieces.Max(p => p.Length));
            for (int i = 0; i < pieces.Count; i++)
            {
                writer.Write(scores[i]);
                writer.Write(pieces[i].Length);
                writer.Write(pieces[i]);
            }
        }
        return Llama2cTokenizer.Load(path, pieces.Count);
    }

    private static string RandomText(Random random, int length, string alphabet = Alphabet)
    {
        var runes = alphabet.EnumerateRunes().ToArray();
        var text = new StringBuilder();
        for (int i = 0; i < length; i++) text.Append(runes[random.Next(runes.Length)].ToString());
        return text.ToString();
    }
}
