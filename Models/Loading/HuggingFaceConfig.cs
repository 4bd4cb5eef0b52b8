using System.Text.Json;
using OServe.Models.Llama;

namespace OServe.Models.Loading;

/// <summary>The fields of a Hugging Face config.json that a Llama-family model needs.</summary>
public sealed record HuggingFaceConfig(LlamaConfig Model, int? BosTokenId, int? EosTokenId, string? TorchDtype)
{
    private static readonly string[] SupportedTypes = ["llama", "mistral"];

    public static HuggingFaceConfig Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: config.json not found", path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
        using var _ = doc;
        var root = doc.RootElement;
        InvalidDataException Bad(string message) => new($"{path}: {message}");

        string modelType = root.TryGetProperty("model_type", out var mt) ? mt.GetString() ?? "" : "";
        if (!SupportedTypes.Contains(modelType))
            throw Bad($"model_type '{modelType}' is not supported (supported: {string.Join(", ", SupportedTypes)})");
        if (root.TryGetProperty("rope_scaling", out var scaling) && scaling.ValueKind != JsonValueKind.Null)
            throw Bad($"rope_scaling {scaling.GetRawText()} is not supported");
        if (root.TryGetProperty("sliding_window", out var window) && window.ValueKind == JsonValueKind.Number)
            throw Bad($"sliding_window {window.GetRawText()} is not supported");
        if (root.TryGetProperty("attention_bias", out var bias) && bias.ValueKind == JsonValueKind.True)
            throw Bad("attention_bias true is not supported");

        int Int(string field, int? fallback = null)
        {
            if (root.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null)
                return v.TryGetInt32(out int i) ? i : throw Bad($"field '{field}' must be an integer, got {v.GetRawText()}");
            return fallback ?? throw Bad($"field '{field}' is missing");
        }
        double Double(string field, double fallback) =>
            root.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : fallback;
        int? TokenId(string field) =>
            root.TryGetProperty(field, out var v) ? v.ValueKind switch
            {
                JsonValueKind.Number => v.GetInt32(),
                JsonValueKind.Array when v.GetArrayLength() > 0 => v[0].GetInt32(),
                _ => null,
            } : null;

        int heads = Int("num_attention_heads");
        var model = new LlamaConfig
        {
            Dim = Int("hidden_size"),
            HiddenDim = Int("intermediate_size"),
            NumLayers = Int("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = Int("num_key_value_heads", heads),
            VocabSize = Int("vocab_size"),
            MaxSeqLen = Int("max_position_embeddings", 2048),
            HeadDim = Int("head_dim", 0),
            RopeTheta = Double("rope_theta", 10000.0),
            NormEps = Double("rms_norm_eps", 1e-6),
            TieWordEmbeddings = root.TryGetProperty("tie_word_embeddings", out var tie) && tie.ValueKind == JsonValueKind.True,
        };
        model.Validate(path);
        string? dtype = root.TryGetProperty("torch_dtype", out var td) ? td.GetString() : null;
        return new HuggingFaceConfig(model, TokenId("bos_token_id"), TokenId("eos_token_id"), dtype);
    }
}
