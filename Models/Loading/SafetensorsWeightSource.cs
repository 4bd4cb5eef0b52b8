using TorchSharp;

namespace OServe.Models.Loading;

/// <summary>
/// Weights spread over one or more safetensors files (a single model.safetensors, or shards
/// listed by model.safetensors.index.json). Tensors are read lazily, one at a time.
/// </summary>
public sealed class SafetensorsWeightSource : IWeightSource, IDisposable
{
    private readonly Dictionary<string, SafetensorsFile> byName = new(StringComparer.Ordinal);
    private readonly List<SafetensorsFile> files = [];

    private SafetensorsWeightSource(string origin) => Origin = origin;

    public string Origin { get; }
    public IReadOnlyCollection<string> Names => byName.Keys;

    public torch.Tensor Load(string name) =>
        byName.TryGetValue(name, out var file) ? file.Read(name) : throw new InvalidDataException($"{Origin}: no tensor named '{name}'");

    /// <summary>Opens a model directory: model.safetensors.index.json if present, else model.safetensors, else the only *.safetensors file.</summary>
    public static SafetensorsWeightSource OpenDirectory(string directory)
    {
        string index = Path.Combine(directory, "model.safetensors.index.json");
        if (File.Exists(index)) return OpenIndex(index);
        string single = Path.Combine(directory, "model.safetensors");
        if (File.Exists(single)) return OpenFiles(single, [single]);
        var any = Directory.GetFiles(directory, "*.safetensors");
        return any.Length switch
        {
            1 => OpenFiles(any[0], any),
            0 => throw new FileNotFoundException($"{directory}: no model.safetensors, model.safetensors.index.json or other *.safetensors file"),
            _ => throw new InvalidDataException($"{directory}: {any.Length} .safetensors files but no model.safetensors.index.json saying which tensor is where"),
        };
    }

    private static SafetensorsWeightSource OpenIndex(string indexPath)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != System.Text.Json.JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath}: no 'weight_map' object");
            weightMap = map.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidDataException($"{indexPath}: not valid JSON: {e.Message}", e);
        }

        var source = new SafetensorsWeightSource(indexPath);
        try
        {
            var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (name, shard) in weightMap)
            {
                if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                    throw new InvalidDataException($"{indexPath}: weight_map['{name}'] = '{shard}' is not a file name in the model directory");
                if (!opened.TryGetValue(shard, out var file))
                {
                    string shardPath = Path.Combine(dir, shard);
                    if (!File.Exists(shardPath)) throw new FileNotFoundException($"{indexPath}: shard '{shard}' (holding '{name}') not found", shardPath);
                    file = SafetensorsFile.Open(shardPath);
                    opened[shard] = file;
                    source.files.Add(file);
                }
                if (!file.Tensors.ContainsKey(name))
                    throw new InvalidDataException($"{indexPath}: weight_map puts '{name}' in {shard}, but that file has no such tensor");
                source.byName[name] = file;
            }
            return source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    private static SafetensorsWeightSource OpenFiles(string origin, IEnumerable<string> paths)
    {
        var source = new SafetensorsWeightSource(origin);
        try
        {
            foreach (var path in paths)
            {
                var file = SafetensorsFile.Open(path);
                source.files.Add(file);
                foreach (var name in file.Tensors.Keys) source.byName[name] = file;
            }
            return source;
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var f in files) f.Dispose();
    }
}
