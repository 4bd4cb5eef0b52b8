using System.Text;

namespace OServe.Models.Tokenization;

/// <summary>
/// llama2.c's tokenizer.bin: int32 max_token_length, then per token a float32 merge score, an
/// int32 byte length and the piece's bytes. Encoding follows run.c exactly: a dummy-prefix space,
/// one token per UTF-8 code point (byte fallback &lt;0xXX&gt; = id byte+3 when the code point is not
/// in the vocabulary), then repeatedly merge the adjacent pair whose merged piece scores highest.
/// </summary>
public sealed class Llama2cTokenizer : ITokenizer
{
    private const int ByteFallbackOffset = 3;
    private readonly byte[][] pieces;
    private readonly float[] scores;
    private readonly Dictionary<string, int> lookup = new(StringComparer.Ordinal);

    private Llama2cTokenizer(string name, byte[][] pieces, float[] scores)
    {
        Name = name;
        this.pieces = pieces;
        this.scores = scores;
        for (int i = 0; i < pieces.Length; i++) lookup.TryAdd(Encoding.UTF8.GetString(pieces[i]), i);
    }

    public string Name { get; }
    public int VocabSize => pieces.Length;
    public int BosId => 1;
    public int EosId => 2;

    /// <param name="vocabSize">From the model's header: the file does not store it.</param>
    public static Llama2cTokenizer Load(string path, int vocabSize)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: llama2.c tokenizer not found", path);
        using var reader = new BinaryReader(File.OpenRead(path));
        var pieces = new byte[vocabSize][];
        var scores = new float[vocabSize];
        try
        {
            int maxTokenLength = reader.ReadInt32();
            for (int i = 0; i < vocabSize; i++)
            {
                scores[i] = reader.ReadSingle();
                int length = reader.ReadInt32();
                if (length < 0 || length > maxTokenLength)
                    throw new InvalidDataException($"{path}: token {i} has length {length}, outside 0..max_token_length ({maxTokenLength})");
                pieces[i] = reader.ReadBytes(length);
                if (pieces[i].Length != length) throw new EndOfStreamException();
            }
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: file ends before all {vocabSize} tokens of the model's vocabulary are read (wrong tokenizer for this model?)");
        }
        return new Llama2cTokenizer($"llama2.c {Path.GetFileName(path)}", pieces, scores);
    }

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var tokens = new List<int>(text.Length + 2);
        if (addBos) tokens.Add(BosId);
        if (text.Length > 0 && lookup.TryGetValue(" ", out int dummyPrefix)) tokens.Add(dummyPrefix);

        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in text.EnumerateRunes())
        {
            if (lookup.TryGetValue(rune.ToString(), out int id))
            {
                tokens.Add(id);
                continue;
            }
            int n = rune.EncodeToUtf8(utf8);
            for (int i = 0; i < n; i++) tokens.Add(utf8[i] + ByteFallbackOffset);
        }

        // pairIds[i] caches the merge of tokens[i] and tokens[i + 1] (-1: not in the vocabulary);
        // a merge only changes its two neighbouring pairs. Picks the same pair as run.c: highest
        // score, leftmost on ties.
        int start = addBos ? 1 : 0;
        var pairIds = new List<int>(tokens.Count);
        for (int i = 0; i < tokens.Count - 1; i++) pairIds.Add(i < start ? -1 : MergeOf(tokens[i], tokens[i + 1]));
        while (true)
        {
            float bestScore = float.NegativeInfinity;
            int bestIndex = -1;
            for (int i = start; i < pairIds.Count; i++)
            {
                int id = pairIds[i];
                if (id >= 0 && scores[id] > bestScore) (bestScore, bestIndex) = (scores[id], i);
            }
            if (bestIndex < 0) break;
            tokens[bestIndex] = pairIds[bestIndex];
            tokens.RemoveAt(bestIndex + 1);
            pairIds.RemoveAt(bestIndex);
            if (bestIndex < pairIds.Count) pairIds[bestIndex] = MergeOf(tokens[bestIndex], tokens[bestIndex + 1]);
            if (bestIndex - 1 >= start) pairIds[bestIndex - 1] = MergeOf(tokens[bestIndex - 1], tokens[bestIndex]);
        }
        return tokens;
    }

    /// <summary>run.c's decode: byte tokens become raw bytes, and a piece's leading space is dropped at the start of the text or right after BOS.</summary>
    public string Decode(IReadOnlyList<int> ids)
    {
        var bytes = new List<byte>(ids.Count * 4);
        bool atStart = true;
        foreach (int id in ids)
        {
            if (id == BosId) { atStart = true; continue; }
            if (id == EosId || (uint)id >= (uint)pieces.Length) continue;
            var piece = pieces[id];
            if (TryParseByteToken(piece, out byte b))
            {
                bytes.Add(b);
            }
            else
            {
                int skip = atStart && piece.Length > 0 && piece[0] == (byte)' ' ? 1 : 0;
                for (int i = skip; i < piece.Length; i++) bytes.Add(piece[i]);
            }
            atStart = false;
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private int MergeOf(int left, int right) =>
        lookup.TryGetValue(Encoding.UTF8.GetString([.. pieces[left], .. pieces[right]]), out int id) ? id : -1;

    public string Piece(int id) => Encoding.UTF8.GetString(pieces[id]);

    private static bool TryParseByteToken(byte[] piece, out byte value)
    {
        value = 0;
        if (piece.Length != 6 || piece[0] != '<' || piece[1] != '0' || piece[2] != 'x' || piece[5] != '>') return false;
        return byte.TryParse(Encoding.ASCII.GetString(piece, 3, 2), System.Globalization.NumberStyles.HexNumber, null, out value);
    }
}
