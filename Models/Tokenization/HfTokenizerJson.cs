using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace OServe.Models.Tokenization;

/// <summary>
/// Reads a Hugging Face tokenizer.json whose model is byte-level BPE into a Microsoft.ML
/// BpeTokenizer. SentencePiece-style BPE (Metaspace "▁" with byte fallback) is rejected with a
/// pointer to tokenizer.model, which <see cref="TokenizerLoader.SentencePiece"/> reads exactly.
/// </summary>
internal static class HfTokenizerJson
{
    // GPT-2's pre-tokenizer pattern: what a ByteLevel pre-tokenizer with use_regex=true applies.
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static MlTokenizer Load(string path, int? bosId, int? eosId)
    {
        TokenizerLoader.RequireFile(path, "tokenizer.json");
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw Bad(path, "no 'model' object");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type != "BPE") throw Bad(path, $"model.type is '{type}'; only BPE is supported (use tokenizer.model for SentencePiece models)");

        string preTokenizers = root.TryGetProperty("pre_tokenizer", out var pre) ? pre.GetRawText() : "null";
        if (!preTokenizers.Contains("\"ByteLevel\"", StringComparison.Ordinal))
            throw Bad(path, "pre_tokenizer is not ByteLevel; SentencePiece-style BPE is read from tokenizer.model instead");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        if (!model.TryGetProperty("vocab", out var vocabElement) || vocabElement.ValueKind != JsonValueKind.Object)
            throw Bad(path, "model.vocab is missing");
        foreach (var entry in vocabElement.EnumerateObject()) vocab[entry.Name] = entry.Value.GetInt32();

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mergesElement))
        {
            int index = 0;
            foreach (var m in mergesElement.EnumerateArray())
            {
                // Older files write "a b", newer ones ["a", "b"].
                merges.Add(m.ValueKind == JsonValueKind.String
                    ? m.GetString()!
                    : m.GetArrayLength() == 2 ? $"{m[0].GetString()} {m[1].GetString()}" : throw Bad(path, $"model.merges[{index}] is not a pair"));
                index++;
            }
        }

        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var added))
        {
            foreach (var a in added.EnumerateArray())
            {
                if (a.TryGetProperty("special", out var s) && s.GetBoolean())
                    special[a.GetProperty("content").GetString()!] = a.GetProperty("id").GetInt32();
            }
        }

        var pattern = FindSplitPattern(root) ?? Gpt2Pattern;
        var options = new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = special.Count > 0 ? special : null,
            PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled), special.Count > 0 ? special : null),
        };
        var tokenizer = BpeTokenizer.Create(options);
        int vocabSize = TokenizerLoader.VocabSizeOf(vocab.Values, special.Values);
        int bos = bosId ?? eosId ?? throw Bad(path, "no BOS/EOS token id given (config.json bos_token_id/eos_token_id)");
        int eos = eosId ?? bos;
        // Byte-level vocabulary strings spell one byte per character (1-2 UTF-8 bytes each), so
        // their UTF-8 length bounds the bytes of text a token covers.
        int maxTokenBytes = Math.Max(TokenizerLoader.Utf8MaxLength(vocab.Keys), TokenizerLoader.Utf8MaxLength(special.Keys));
        return new MlTokenizer($"bpe {Path.GetFileName(path)}", tokenizer, vocabSize, bos, eos, special.Values, maxTokenBytes);
    }

    private static string? FindSplitPattern(JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object) return null;
        IEnumerable<JsonElement> steps = pre.TryGetProperty("pretokenizers", out var list) ? list.EnumerateArray() : [pre];
        foreach (var step in steps)
        {
            if (step.TryGetProperty("type", out var type) && type.GetString() == "Split"
                && step.TryGetProperty("pattern", out var p) && p.TryGetProperty("Regex", out var regex))
                return regex.GetString();
        }
        return null;
    }

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw Bad(path, $"not valid JSON: {e.Message}");
        }
    }

    private static InvalidDataException Bad(string path, string message) => new($"{path}: {message}");
}
