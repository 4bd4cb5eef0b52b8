using OServe.Models.Llama;
using OServe.Models.Loading;
using OServe.Models.Tokenization;
using TorchSharp;

namespace OServe.Models;

/// <summary>
/// Loads a model from a path: a llama2.c checkpoint (.bin, with its tokenizer .bin beside it), a
/// directory holding one (as llama2.c's own model folders do), or a Hugging Face directory
/// (config.json + safetensors + tokenizer.model or tokenizer.json).
/// </summary>
public static class ModelLoader
{
    /// <param name="tokenizerPath">llama2.c only: the tokenizer .bin; default tokenizer.bin beside the checkpoint, else the only tok*.bin there.</param>
    /// <param name="forward">forward implementation; Auto: fused on CUDA, reference on the CPU.</param>
    public static LoadedModel Load(string path, torch.Device device, torch.ScalarType dtype, string? tokenizerPath = null, ForwardPath forward = ForwardPath.Auto)
    {
        var (huggingFace, located) = Locate(path);
        return huggingFace ? LoadHuggingFace(located, device, dtype, forward) : LoadLlama2c(located, device, dtype, tokenizerPath, forward);
    }

    /// <summary>The shape and tokenizer of the model at <paramref name="path"/> (as <see cref="Load"/> finds it), reading no weights.</summary>
    public static ModelShape ReadShape(string path, string? tokenizerPath = null)
    {
        var (huggingFace, located) = Locate(path);
        if (huggingFace) return HuggingFaceShape(located);
        var config = Llama2cCheckpoint.ReadConfig(located);
        var tokenizer = Llama2cTokenizer.Load(tokenizerPath ?? FindLlama2cTokenizer(located), config.VocabSize);
        return new ModelShape(config, tokenizer, Path.GetFileNameWithoutExtension(located), ShapeDescription($"llama2.c {located}", config, tokenizer));
    }

    /// <summary>What <paramref name="path"/> names: a Hugging Face directory (true), or a llama2.c checkpoint file (false, found in a directory that holds one).</summary>
    private static (bool HuggingFace, string Path) Locate(string path)
    {
        if (Directory.Exists(path))
            return File.Exists(Path.Combine(path, "config.json")) ? (true, path) : (false, FindLlama2cCheckpoint(path));
        if (File.Exists(path))
        {
            if (path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)) return (false, path);
            if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || Path.GetFileName(path) == "config.json")
                return (true, Path.GetDirectoryName(Path.GetFullPath(path))!);
            throw new InvalidDataException(
                $"{path}: not a model this loader knows (expected a llama2.c .bin checkpoint or a Hugging Face directory with config.json and safetensors)");
        }
        throw new FileNotFoundException($"{path}: no such file or directory", path);
    }

    /// <summary>A Hugging Face model's name: its directory's.</summary>
    private static string DirectoryModelName(string directory) => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory)));

    private static ModelShape HuggingFaceShape(string directory)
    {
        var hf = HuggingFaceConfig.Read(Path.Combine(directory, "config.json"));
        var tokenizer = LoadHuggingFaceTokenizer(directory, hf);
        return new ModelShape(hf.Model, tokenizer, DirectoryModelName(directory), ShapeDescription($"Hugging Face {directory}", hf.Model, tokenizer));
    }

    private static string ShapeDescription(string origin, LlamaConfig c, ITokenizer tokenizer) =>
        $"{origin} (shape and tokenizer only, no weights): {c.ParameterCount / 1e6:F2}M parameters, dim {c.Dim}, {c.NumLayers} layers, " +
        $"vocab {c.VocabSize}, context {c.MaxSeqLen}, tokenizer {tokenizer.Name}";

    public static LoadedModel LoadLlama2c(string path, torch.Device device, torch.ScalarType dtype, string? tokenizerPath = null, ForwardPath forward = ForwardPath.Auto)
    {
        var (config, weights) = Llama2cCheckpoint.Read(path);
        using var _ = weights;
        string tokPath = tokenizerPath ?? FindLlama2cTokenizer(path);
        var tokenizer = Llama2cTokenizer.Load(tokPath, config.VocabSize);
        var model = LlamaModel.Create(config, weights, device, dtype, forward);
        string name = Path.GetFileNameWithoutExtension(path);
        return new LoadedModel(model, tokenizer, name, Describe($"llama2.c {path}", config, dtype, device, tokenizer), isRandom: false);
    }

    public static LoadedModel LoadHuggingFace(string directory, torch.Device device, torch.ScalarType dtype, ForwardPath forward = ForwardPath.Auto)
    {
        var hf = HuggingFaceConfig.Read(Path.Combine(directory, "config.json"));
        var tokenizer = LoadHuggingFaceTokenizer(directory, hf);
        using var weights = SafetensorsWeightSource.OpenDirectory(directory);
        var model = LlamaModel.Create(hf.Model, weights, device, dtype, forward);
        return new LoadedModel(model, tokenizer, DirectoryModelName(directory), Describe($"Hugging Face {directory}", hf.Model, dtype, device, tokenizer), isRandom: false);
    }

    private static ITokenizer LoadHuggingFaceTokenizer(string directory, HuggingFaceConfig hf)
    {
        string sentencePiece = Path.Combine(directory, "tokenizer.model");
        if (File.Exists(sentencePiece)) return TokenizerLoader.SentencePiece(sentencePiece);
        string json = Path.Combine(directory, "tokenizer.json");
        if (File.Exists(json)) return TokenizerLoader.HuggingFaceJson(json, hf.BosTokenId, hf.EosTokenId);
        throw new FileNotFoundException($"{directory}: no tokenizer.model or tokenizer.json");
    }

    /// <summary>The one llama2.c checkpoint in a directory: a .bin that is not a tokenizer (tokenizer.bin, tok*.bin).</summary>
    private static string FindLlama2cCheckpoint(string directory)
    {
        var checkpoints = Directory.GetFiles(directory, "*.bin")
            .Where(f => !Path.GetFileName(f).StartsWith("tok", StringComparison.OrdinalIgnoreCase))
            .Order(StringComparer.Ordinal)
            .ToList();
        return checkpoints.Count switch
        {
            1 => checkpoints[0],
            0 => throw new FileNotFoundException(
                $"{directory}: neither a Hugging Face model (no config.json) nor a llama2.c one (no checkpoint .bin besides tokenizer files)", directory),
            _ => throw new InvalidDataException(
                $"{directory}: {checkpoints.Count} llama2.c checkpoints ({string.Join(", ", checkpoints.Select(Path.GetFileName))}); name one of them"),
        };
    }

    private static string FindLlama2cTokenizer(string checkpoint)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(checkpoint))!;
        string standard = Path.Combine(dir, "tokenizer.bin");
        if (File.Exists(standard)) return standard;
        var candidates = Directory.GetFiles(dir, "tok*.bin");
        return candidates.Length == 1
            ? candidates[0]
            : throw new FileNotFoundException(
                $"{checkpoint}: no tokenizer given and {(candidates.Length == 0 ? "no" : "several")} tokenizer.bin/tok*.bin files beside it; pass the tokenizer path");
    }

    private static string Describe(string origin, LlamaConfig c, torch.ScalarType dtype, torch.Device device, ITokenizer tokenizer) =>
        $"{origin}: {c.ParameterCount / 1e6:F2}M parameters, dim {c.Dim}, {c.NumLayers} layers, {c.NumHeads} heads ({c.NumKvHeads} KV), " +
        $"vocab {c.VocabSize}, context {c.MaxSeqLen}, {dtype} on {DeviceSelection.Describe(device)}, tokenizer {tokenizer.Name}";
}
