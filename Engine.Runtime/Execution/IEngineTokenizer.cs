namespace OServe.Engine.Execution;

/// <summary>What the engine core needs from the served model's tokenizer.</summary>
public interface IEngineTokenizer
{
    int VocabSize { get; }

    /// <summary>End-of-sequence id, or null when the vocabulary has none.</summary>
    int? EosTokenId { get; }

    /// <summary>Every token that ends a generation unless ignore_eos (EOS, and BOS for llama2.c models).</summary>
    IReadOnlyList<int> EndTokenIds => EosTokenId is { } eos ? [eos] : [];

    /// <summary>Upper bound on the UTF-8 bytes one token stands for; null when unknown.</summary>
    int? MaxTokenBytes => null;

    IReadOnlyList<int> Encode(string text, bool addBos);

    /// <summary>As <see cref="Encode(string, bool)"/>, giving up when <paramref name="cancellationToken"/> fires.</summary>
    IReadOnlyList<int> Encode(string text, bool addBos, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Encode(text, addBos);
    }

    /// <summary>The bytes one token stands for, alone (logprobs name tokens by their text and bytes).</summary>
    byte[] TokenBytes(int tokenId) => [];

    /// <summary>Text of token ids, special tokens dropped.</summary>
    string Decode(IReadOnlyList<int> tokenIds) => "";

    /// <summary>A fresh per-request decoder that turns generated tokens into text deltas.</summary>
    ITokenStreamDecoder CreateDecoder(IReadOnlyList<int> promptTokens);
}

/// <summary>Incremental detokenization of one request's output (vLLM's detokenize_incrementally).</summary>
public interface ITokenStreamDecoder
{
    /// <summary>Adds one generated token; returns the text it completes (may be empty while a character is incomplete).</summary>
    string Add(int tokenId);

    /// <summary>Returns text still held back at the end of the stream.</summary>
    string Flush();
}
