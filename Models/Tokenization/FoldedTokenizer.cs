namespace OServe.Models.Tokenization;

/// <summary>
/// Another tokenizer's ids folded onto a model's vocabulary (id mod vocab), for random-weight
/// models of a card whose real tokenizer is not at hand: prompts encode to valid ids of any
/// vocabulary size, and any sampled id decodes to some text. Round trips are not exact and the
/// text means nothing; it exists so such a model can be served and load-tested.
/// </summary>
public sealed class FoldedTokenizer : ITokenizer
{
    private readonly ITokenizer inner;

    public FoldedTokenizer(ITokenizer inner, int vocabSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 2);
        this.inner = inner;
        VocabSize = vocabSize;
    }

    public string Name => $"{inner.Name} folded onto {VocabSize} ids";
    public int VocabSize { get; }
    public int BosId => inner.BosId % VocabSize;
    public int EosId => inner.EosId % VocabSize;

    /// <summary>Folding keeps the inner tokenizer's token count, so its byte bound holds.</summary>
    public int MaxTokenBytes => inner.MaxTokenBytes;

    public IReadOnlyList<int> Encode(string text, bool addBos) => Encode(text, addBos, CancellationToken.None);

    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken) =>
        inner.Encode(text, addBos, cancellationToken).Select(id => id % VocabSize).ToArray();

    public string Decode(IReadOnlyList<int> ids) => inner.Decode(ids.Select(id => id % inner.VocabSize).ToArray());
}
