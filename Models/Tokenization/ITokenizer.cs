namespace OServe.Models.Tokenization;

/// <summary>What the engine needs from a tokenizer. Decode drops BOS/EOS and other special tokens.</summary>
public interface ITokenizer
{
    /// <summary>Short description for logs and /v1/models, e.g. "llama2.c tok512.bin".</summary>
    string Name { get; }

    int VocabSize { get; }
    int BosId { get; }
    int EosId { get; }

    /// <summary>Tokens that end a generation (unless the request sets ignore_eos): EOS, and more where the format says so.</summary>
    IReadOnlyList<int> EndTokenIds => [EosId];

    /// <summary>
    /// An upper bound on the bytes of UTF-8 text one token stands for. A text of B bytes therefore
    /// needs at least B / MaxTokenBytes tokens, so a prompt can be refused as too long for the
    /// context from its byte length alone, before any tokenizing work is spent on it.
    /// </summary>
    int MaxTokenBytes { get; }

    IReadOnlyList<int> Encode(string text, bool addBos);

    /// <summary>As <see cref="Encode(string, bool)"/>; tokenizers whose work can be long check the token as they go.</summary>
    IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Encode(text, addBos);
    }

    string Decode(IReadOnlyList<int> ids);

    /// <summary>The bytes of text one token stands for on its own (for logprobs, which name each token).</summary>
    byte[] TokenBytes(int id) => System.Text.Encoding.UTF8.GetBytes(Decode([id]));
}
