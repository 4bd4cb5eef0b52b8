namespace OServe.Engine.Execution;

/// <summary>What the engine core needs from the served model's tokenizer.</summary>
public interface IEngineTokenizer
{
    int VocabSize { get; }

    /// <summary>End-of-sequence id, or null when the vocabulary has none.</summary>
    int? EosTokenId { get; }

    IReadOnlyList<int> Encode(string text, bool addBos);

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
