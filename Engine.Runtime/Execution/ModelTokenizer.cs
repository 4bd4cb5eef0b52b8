using OServe.Models.Tokenization;

namespace OServe.Engine.Execution;

/// <summary>Serves a model's <see cref="ITokenizer"/> to the engine core; text deltas come from <see cref="IncrementalDetokenizer"/>.</summary>
public sealed class ModelTokenizer(ITokenizer tokenizer) : IEngineTokenizer
{
    public ITokenizer Inner { get; } = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
    public int VocabSize => Inner.VocabSize;
    public int? EosTokenId => Inner.EosId >= 0 ? Inner.EosId : null;
    public IReadOnlyList<int> EndTokenIds => [.. Inner.EndTokenIds.Where(id => id >= 0)];
    public int? MaxTokenBytes => Inner.MaxTokenBytes;

    public IReadOnlyList<int> Encode(string text, bool addBos) => Inner.Encode(text, addBos);

    public IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken) => Inner.Encode(text, addBos, cancellationToken);

    public byte[] TokenBytes(int tokenId) => Inner.TokenBytes(tokenId);

    public string Decode(IReadOnlyList<int> tokenIds) => Inner.Decode(tokenIds);

    public ITokenStreamDecoder CreateDecoder(IReadOnlyList<int> promptTokens) => new Decoder(new IncrementalDetokenizer(Inner, promptTokens));

    private sealed class Decoder(IncrementalDetokenizer detokenizer) : ITokenStreamDecoder
    {
        public string Add(int tokenId) => detokenizer.Add(tokenId);
        public string Flush() => detokenizer.Flush();
    }
}
