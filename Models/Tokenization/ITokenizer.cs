namespace OServe.Models.Tokenization;

/// <summary>What the engine needs from a tokenizer. Decode drops BOS/EOS and other special tokens.</summary>
public interface ITokenizer
{
    /// <summary>Short description for logs and /v1/models, e.g. "llama2.c tok512.bin".</summary>
    string Name { get; }

    int VocabSize { get; }
    int BosId { get; }
    int EosId { get; }

    IReadOnlyList<int> Encode(string text, bool addBos);

    string Decode(IReadOnlyList<int> ids);
}
