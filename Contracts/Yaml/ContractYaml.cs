using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace OServe.Contracts.Yaml;

/// <summary>
/// Reads and writes every contract as YAML (snake_case fields, snake_case enum values). Readers
/// throw <see cref="ContractException"/> with every problem found (file, line, field, what was
/// expected), never a parser stack trace. Writing then reading gives back the same values.
/// </summary>
public static class ContractYaml
{
    private static readonly ISerializer Serializer = new SerializerBuilder()
        .WithNamingConvention(UnderscoredNamingConvention.Instance)
        .WithEnumNamingConvention(UnderscoredNamingConvention.Instance)
        .ConfigureDefaultValuesHandling(DefaultValuesHandling.OmitNull)
        .DisableAliases()
        .Build();

    public static string Write<T>(T value) where T : notnull => Serializer.Serialize(value);

    public static void WriteFile<T>(string path, T value) where T : notnull
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, Write(value));
    }

    public static Cluster ReadCluster(string path) => LoadCluster(path).Value;
    public static ModelCard ReadModelCard(string path) => LoadModelCard(path).Value;
    public static Scenario ReadScenario(string path) => LoadScenario(path).Value;
    public static Workload ReadWorkload(string path) => LoadWorkload(path).Value;
    public static Plan ReadPlan(string path) => LoadPlan(path).Value;
    public static PlanSchedule ReadPlanSchedule(string path) => LoadPlanSchedule(path).Value;

    public static Sourced<Cluster> LoadCluster(string path) => Load(path, ContractReaders.Cluster);
    public static Sourced<ModelCard> LoadModelCard(string path) => Load(path, ContractReaders.ModelCard);
    public static Sourced<Scenario> LoadScenario(string path) => Load(path, ContractReaders.Scenario);
    public static Sourced<Workload> LoadWorkload(string path) => Load(path, ContractReaders.Workload);
    public static Sourced<Plan> LoadPlan(string path) => Load(path, ContractReaders.Plan);
    public static Sourced<PlanSchedule> LoadPlanSchedule(string path) => Load(path, ContractReaders.Schedule);
    public static Sourced<ConstraintSet> LoadConstraints(string path) => Load(path, ContractReaders.Constraints);

    public static Sourced<Cluster> ParseCluster(string yaml, string file = "cluster.yaml") => Parse(yaml, file, ContractReaders.Cluster);
    public static Sourced<ModelCard> ParseModelCard(string yaml, string file = "model.yaml") => Parse(yaml, file, ContractReaders.ModelCard);
    public static Sourced<Scenario> ParseScenario(string yaml, string file = "scenario.yaml") => Parse(yaml, file, ContractReaders.Scenario);
    public static Sourced<Workload> ParseWorkload(string yaml, string file = "workload.yaml") => Parse(yaml, file, ContractReaders.Workload);
    public static Sourced<Plan> ParsePlan(string yaml, string file = "plan.yaml") => Parse(yaml, file, ContractReaders.Plan);
    public static Sourced<PlanSchedule> ParsePlanSchedule(string yaml, string file = "schedule.yaml") => Parse(yaml, file, ContractReaders.Schedule);
    public static Sourced<ConstraintSet> ParseConstraints(string yaml, string file = "constraints.yaml") => Parse(yaml, file, ContractReaders.Constraints);

    private static Sourced<T> Load<T>(string path, Func<MapReader, T> read)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ContractException([new ContractError(path, 0, "", $"cannot read the file: {e.Message}")]);
        }
        return Parse(text, path, read);
    }

    private static Sourced<T> Parse<T>(string yaml, string file, Func<MapReader, T> read)
    {
        var ctx = new ReadContext(file);
        var stream = new YamlStream();
        try { stream.Load(new StringReader(yaml)); }
        catch (YamlException e)
        {
            var message = e.InnerException?.Message ?? e.Message;
            // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: ..) - (...): "; the line is in our prefix already.
            var cut = message.LastIndexOf("): ", StringComparison.Ordinal);
            if (cut >= 0) message = message[(cut + 3)..];
            throw new ContractException([new ContractError(file, (int)e.Start.Line, "", $"invalid YAML: {message}")]);
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new ContractException([new ContractError(file, 1, "", "expected one YAML document holding a mapping of fields")]);
        var reader = new MapReader(root, ctx, "");
        var value = read(reader);
        reader.Finish();
        if (ctx.Errors.Count > 0) throw new ContractException(ctx.Errors.OrderBy(e => e.Line).ToList());
        return new Sourced<T>(value, ctx.Lines);
    }
}
