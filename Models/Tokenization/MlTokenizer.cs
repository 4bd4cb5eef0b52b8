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

    /// <param name="maxTokenBytes">Longest UTF-8 text of any token (vocabulary and special tokens), see <see cref="ITokenizer.MaxTokenBytes"/>.</param>
    public MlTokenizer(string name, Tokenizer inner, int vocabSize, int bosId, int eosId, IEnumerable<int> specialIds, int maxTokenBytes)
    {
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

    public IReadOnlyList<int> Encode(string text, bool addBos)
    {
        var ids = inner.EncodeToIds(text);
        if (!addBos) return ids;
        var result = new List<int>(ids.Count + 1) { BosId };
        result.AddRange(ids);
        return result;
    }

    public string Decode(IReadOnlyList<int> ids) =>
        inner.Decode(ids.Where(id => !specialIds.Contains(id) && (uint)id < (uint)VocabSize)) ?? "";
}
