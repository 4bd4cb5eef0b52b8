using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Orchestration;
using OServe.Models;

namespace OServe.Engine.Cli;

/// <summary>
/// Resolves the model and cluster a user names: a YAML path, or the name of a built-in model card
/// (cards/ beside the executable) or cluster (scenarios/clusters/ beside it).
/// </summary>
public static class Catalog
{
    public static string CardsDirectory => Path.Combine(AppContext.BaseDirectory, "cards");
    public static string ScenariosDirectory => Path.Combine(AppContext.BaseDirectory, "scenarios");
    public static string ClustersDirectory => Path.Combine(ScenariosDirectory, "clusters");

    /// <summary>
    /// A card by path or name; the built-in model's name gives its card derived from the built-in
    /// config (float32, as `oserve serve` runs it by default), so it cannot drift from the model.
    /// </summary>
    public static ModelCard Model(string nameOrPath, string? relativeTo = null)
    {
        var builtIn = new BuiltInModelOptions();
        if (string.Equals(nameOrPath, builtIn.Name, StringComparison.OrdinalIgnoreCase) && !File.Exists(nameOrPath))
            return ModelCardOf.Llama(BuiltInModel.ConfigOf(builtIn), builtIn.Name, builtIn.DType);
        return Resolve(nameOrPath, relativeTo, CardsDirectory, ContractYaml.ReadModelCard, c => c.Name, "model card");
    }

    public static Cluster Cluster(string nameOrPath, string? relativeTo = null) =>
        Resolve(nameOrPath, relativeTo, ClustersDirectory, ContractYaml.ReadCluster, c => c.Name, "cluster");

    public static IReadOnlyList<ModelCard> AllModels() => ReadAll(CardsDirectory, ContractYaml.ReadModelCard);

    public static IReadOnlyList<Cluster> AllClusters() => ReadAll(ClustersDirectory, ContractYaml.ReadCluster);

    /// <summary>A scenario file by path, or by name among the built-in scenarios.</summary>
    public static string ScenarioPath(string nameOrPath)
    {
        if (File.Exists(nameOrPath)) return nameOrPath;
        var builtIn = Path.Combine(ScenariosDirectory, nameOrPath.EndsWith(".yaml") ? nameOrPath : nameOrPath + ".yaml");
        if (File.Exists(builtIn)) return builtIn;
        var known = Directory.Exists(ScenariosDirectory)
            ? Directory.EnumerateFiles(ScenariosDirectory, "*.yaml").Select(Path.GetFileNameWithoutExtension).Order().ToList()
            : [];
        throw new ContractException([new ContractError(nameOrPath, 0, "",
            $"no such scenario file, and not a built-in scenario (built-in: {string.Join(", ", known)})")]);
    }

    private static T Resolve<T>(string nameOrPath, string? relativeTo, string dir, Func<string, T> read, Func<T, string> name, string what)
    {
        var candidates = new List<string> { nameOrPath };
        if (relativeTo is not null) candidates.Insert(0, Path.Combine(relativeTo, nameOrPath));
        foreach (var path in candidates)
            if (File.Exists(path)) return read(path);
        var all = ReadAll(dir, read);
        var match = all.FirstOrDefault(x => string.Equals(name(x), nameOrPath, StringComparison.OrdinalIgnoreCase));
        if (match is not null) return match;
        throw new ContractException([new ContractError(nameOrPath, 0, "",
            $"no such {what} file, and not a built-in {what} name (built-in: {string.Join(", ", all.Select(name))})")]);
    }

    private static List<T> ReadAll<T>(string dir, Func<string, T> read) =>
        Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*.yaml").Order().Select(read).ToList() : [];
}
