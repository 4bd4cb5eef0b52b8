using System.Text;

namespace OServe.Models.Tokenization;

/// <summary>
/// llama2.c's tokenizer.bin: int32 max_token_length, then per token a float32 merge score, an
/// int32 byte length and the piece's bytes. Encoding follows run.c exactly: a dummy-prefix space,
/// one token per UTF-8 code point (byte fallback &lt;0xXX&gt; = id byte+3 when the code point is not
/// in the vocabulary), then repeatedly merge the adjacent pair whose merged piece scores highest
/// (leftmost on ties). run.c rescans the whole list per merge (quadratic); <see cref="Encode(string, bool, CancellationToken)"/>
/// makes the same choices with a heap. BOS (id 1) ends generation as EOS does: run.c stops on it,
/// since stories in its training data are delimited by BOS.
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
        MaxTokenBytes = Math.Max(1, pieces.Length == 0 ? 1 : pieces.Max(p => p.Length));
    }

    public string Name { get; }
    public int VocabSize => pieces.Length;
    public int BosId => 1;
    public int EosId => 2;
    public IReadOnlyList<int> EndTokenIds { get; } = [2, 1];

    /// <summary>The longest piece: no token covers more bytes of text (a byte token's piece, "&lt;0xE2&gt;", is longer than its one byte).</summary>
    public int MaxTokenBytes { get; }

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

    public IReadOnlyList<int> Encode(string text, bool addBos) => Encode(text, addBos, CancellationToken.None);

    /// <summary>
    /// run.c's encoding in O(n log n): the adjacent pair whose merged piece scores highest is merged
    /// first, leftmost on ties, as run.c's rescan-everything loop picks it. Symbols form a linked
    /// list; every candidate pair sits in a heap ordered by (score desc, left position asc), and an
    /// entry whose symbols changed since it was pushed is dropped when it surfaces (versions).
    /// A pair whose merge scores NaN or -inf is never merged, as in the scan it replaces.
    /// </summary>
    /// <param name="cancellationToken">Checked every few thousand merges: a caller that left stops paying.</param>
    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var ids = new List<int>(text.Length + 1);
        if (text.Length > 0 && lookup.TryGetValue(" ", out int dummyPrefix)) ids.Add(dummyPrefix);

        Span<byte> utf8 = stackalloc byte[4];
        int numRunes = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if ((++numRunes & 0xFFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            if (lookup.TryGetValue(rune.ToString(), out int id))
            {
                ids.Add(id);
                continue;
            }
            int n = rune.EncodeToUtf8(utf8);
            for (int i = 0; i < n; i++) ids.Add(utf8[i] + ByteFallbackOffset);
        }

        int count = ids.Count;
        var symbol = ids.ToArray();
        var next = new int[count];
        var prev = new int[count];
        var version = new int[count];
        for (int i = 0; i < count; i++) (prev[i], next[i]) = (i - 1, i + 1 < count ? i + 1 : -1);
        var heap = new PriorityQueue<Candidate, Candidate>(Math.Max(count - 1, 1), CandidateOrder.Instance);
        void Push(int left)
        {
            int right = next[left];
            if (right < 0) return;
            int merged = MergeOf(symbol[left], symbol[right]);
            // NaN and -inf never beat the scan's starting best (-inf), so they never merge there either.
            if (merged < 0 || !(scores[merged] > float.NegativeInfinity)) return;
            var candidate = new Candidate(scores[merged], left, right, merged, version[left], version[right]);
            heap.Enqueue(candidate, candidate);
        }
        for (int i = 0; i + 1 < count; i++) Push(i);

        int numPopped = 0;
        while (heap.TryDequeue(out var c, out _))
        {
            if ((++numPopped & 0xFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            if (version[c.Left] != c.LeftVersion || version[c.Right] != c.RightVersion) continue; // stale
            symbol[c.Left] = c.Merged;
            version[c.Left]++;
            version[c.Right]++;
            symbol[c.Right] = -1;
            int after = next[c.Right];
            next[c.Left] = after;
            if (after >= 0) prev[after] = c.Left;
            if (prev[c.Left] >= 0) Push(prev[c.Left]);
            Push(c.Left);
        }

        var tokens = new List<int>(count + 1);
        if (addBos) tokens.Add(BosId);
        for (int i = count > 0 ? 0 : -1; i >= 0; i = next[i]) tokens.Add(symbol[i]);
        return tokens;
    }

    /// <summary>A possible merge of two adjacent symbols, valid while neither symbol has changed.</summary>
    private readonly record struct Candidate(float Score, int Left, int Right, int Merged, int LeftVersion, int RightVersion);

    /// <summary>Highest score first; on equal scores the leftmost pair (symbols keep their original order).</summary>
    private sealed class CandidateOrder : IComparer<Candidate>
    {
        public static CandidateOrder Instance { get; } = new();

        public int Compare(Candidate a, Candidate b)
        {
            int byScore = b.Score.CompareTo(a.Score);
            return byScore != 0 ? byScore : a.Left.CompareTo(b.Left);
        }
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

    /// <summary>The piece's bytes, a byte token's one byte, nothing for ids outside the vocabulary; spaces kept (" upon").</summary>
    public byte[] TokenBytes(int id) =>
        (uint)id >= (uint)pieces.Length ? [] : TryParseByteToken(pieces[id], out byte b) ? [b] : [.. pieces[id]];

    // For tests that check Encode against run.c's quadratic scan.
    internal ReadOnlySpan<byte> PieceBytes(int id) => pieces[id];
    internal float Score(int id) => scores[id];
    internal bool TryLookup(string piece, out int id) => lookup.TryGetValue(piece, out id);

    private static bool TryParseByteToken(byte[] piece, out byte value)
    {
        value = 0;
        if (piece.Length != 6 || piece[0] != '<' || piece[1] != '0' || piece[2] != 'x' || piece[5] != '>') return false;
        return byte.TryParse(Encoding.ASCII.GetString(piece, 3, 2), System.Globalization.NumberStyles.HexNumber, null, out value);
    }
}
