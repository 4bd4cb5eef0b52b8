using Microsoft.ML.Tokenizers;

namespace OServe.Models.Tokenization;

/// <summary>
/// Adapter over a Microsoft.ML.Tokenizers tokenizer (SentencePiece, tiktoken, BPE). BOS is
/// added here, not by the inner tokenizer, so every tokenizer behaves the same for addBos; special
/// tokens are filtered before decoding so they never leak into generated text.
/// </summary>
public sealed class MlTokenizer : ITokenizer
{
    private readonly Tokenizer inner;
    private readonly HashSet<int> specialIds;

    /// <summary>Pre-tokens longer than this (chars) go to <see cref="TiktokenMerges"/> when the tokenizer has one.</summary>
    public const int LongPieceChars = 256;

    private readonly TiktokenMerges? longPieces;
    private readonly IReadOnlyDictionary<string, int> specialTokens;

    /// <param name="maxTokenBytes">Longest UTF-8 text of any token (vocabulary and special tokens), see <see cref="ITokenizer.MaxTokenBytes"/>.</param>
    /// <param name="longPieces">tiktoken ranks: long pre-tokens are merged in O(n log n) instead of the library's quadratic loop.</param>
    public MlTokenizer(string name, Tokenizer inner, int vocabSize, int bosId, int eosId, IEnumerable<int> specialIds, int maxTokenBytes,
        TiktokenMerges? longPieces = null, IReadOnlyDictionary<string, int>? specialTokens = null)
    {
        this.longPieces = longPieces;
        this.specialTokens = specialTokens ?? new Dictionary<string, int>();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTokenBytes);
        Name = name;
        MaxTokenBytes = maxTokenBytes;
        this.inner = inner;
        VocabSize = vocabSize;
        BosId = bosId;
        EosId = eosId;
        this.specialIds = [.. specialIds, bosId, eosId];
    }

    public string Name { get; }
    public int VocabSize { get; }
    public int BosId { get; }
    public int EosId { get; }
    public int MaxTokenBytes { get; }

    /// <summary>The wrapped tokenizer, for callers that need its full API.</summary>
    public Tokenizer Inner => inner;

    public IReadOnlyList<int> Encode(string text, bool addBos) => Encode(text, addBos, CancellationToken.None);

    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var ids = longPieces is null ? inner.EncodeToIds(text) : EncodeByPieces(text, cancellationToken);
        if (!addBos) return ids;
        var result = new List<int>(ids.Count + 1) { BosId };
        result.AddRange(ids);
        return result;
    }

    /// <summary>
    /// tiktoken's encoding is per pre-token; the library's merge loop is quadratic in a pre-token's
    /// length. Texts without long pre-tokens go to the library whole; otherwise each pre-token goes
    /// its way: a special token to its id, a short one to the library, a long one to the heap merge.
    /// </summary>
    private IReadOnlyList<int> EncodeByPieces(string text, CancellationToken cancellationToken)
    {
        if (inner.PreTokenizer is not { } pre || text.Length <= LongPieceChars)
            return inner.EncodeToIds(text);
        var pieces = pre.PreTokenize(text).ToList();
        if (pieces.All(p => p.Length <= LongPieceChars))
            return inner.EncodeToIds(text);
        var ids = new List<int>(text.Length / 2);
        foreach (var (offset, length) in pieces)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var piece = text.AsSpan(offset, length);
            if (specialTokens.Count > 0 && specialTokens.TryGetValue(piece.ToString(), out int special))
                ids.Add(special);
            else if (length <= LongPieceChars)
                ids.AddRange(inner.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
            else
                longPieces!.Encode(System.Text.Encoding.UTF8.GetBytes(piece.ToString()), ids, cancellationToken);
        }
        return ids;
    }

    public string Decode(IReadOnlyList<int> ids) =>
        inner.Decode(ids.Where(id => !specialIds.Contains(id) && (uint)id < (uint)VocabSize)) ?? "";
}
