using OServe.Contracts.Yaml;
using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>Every YAML file the repository ships must load and validate.</summary>
public sealed class ShippedFilesTests
{
    public static TheoryData<string> Cards => RepoFiles.Data("cards");
    public static TheoryData<string> Clusters => RepoFiles.Data("scenarios", "clusters");
    public static TheoryData<string> Plans => RepoFiles.Data("scenarios", "plans");

    public static TheoryData<string> Scenarios()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(RepoFiles.Path("scenarios"), "*.yaml").Order())
            data.Add(Path.GetRelativePath(RepoFiles.Root, f));
        return data;
    }

    [Theory, MemberData(nameof(Cards))]
    public void ModelCardLoads(string file)
    {
        var card = ContractYaml.ReadModelCard(RepoFiles.Path(file));
        Assert.True(card.ParamCount > 1_000_000_000, $"{card.Name} has {card.ParamCount} parameters");
        Assert.Equal(0, card.Hidden % card.Heads);
    }

    [Theory, MemberData(nameof(Clusters))]
    public void ClusterLoads(string file)
    {
        var cluster = ContractYaml.ReadCluster(RepoFiles.Path(file));
        Assert.True(cluster.NumGpus > 0);
        Assert.All(cluster.Nodes, n => Assert.NotNull(cluster.GpuTypeOf(n)));
    }

    [Theory, MemberData(nameof(Scenarios))]
    public void ScenarioLoadsAndItsReferencesResolve(string file)
    {
        var path = RepoFiles.Path(file);
        var scenario = ContractYaml.ReadScenario(path);
        var cluster = ContractYaml.ReadCluster(Path.Combine(Path.GetDirectoryName(path)!, scenario.Cluster));
        Assert.True(cluster.NumGpus > 0);
        var cards = Directory.EnumerateFiles(RepoFiles.Path("cards"), "*.yaml").Select(ContractYaml.ReadModelCard);
        Assert.Contains(cards, c => c.Name == scenario.Model);
        Assert.True(scenario.Workload.Trace is not null || scenario.Workload.Synthetic is not null);
    }

    [Theory, MemberData(nameof(Plans))]
    public void PlanValidatesAgainstItsClusterAndModel(string file)
    {
        var plan = ContractYaml.LoadPlan(RepoFiles.Path(file));
        var cluster = Directory.EnumerateFiles(RepoFiles.Path("scenarios", "clusters"), "*.yaml")
            .Select(ContractYaml.ReadCluster).Single(c => c.Name == plan.Value.Cluster);
        var model = Directory.EnumerateFiles(RepoFiles.Path("cards"), "*.yaml")
            .Select(ContractYaml.ReadModelCard).SingleOrDefault(c => c.Name == plan.Value.Model);
        if (model is null)
        {
            // The built-in model has no card file: its card is derived from its config by the engine,
            // and Engine.Tests' ValidateCommandTests checks these plans against it.
            Assert.Equal("oserve-builtin-random", plan.Value.Model);
            return;
        }
        Assert.Empty(PlanChecks.Validate(plan.Value, cluster, model, plan.Lines));
    }

    [Fact]
    public void ModelCardParameterCountsMatchPublishedSizes()
    {
        double Billions(string file) => ContractYaml.ReadModelCard(RepoFiles.Path("cards", file)).ParamCount / 1e9;
        Assert.InRange(Billions("llama-2-7b.yaml"), 6.6, 6.9);
        Assert.InRange(Billions("llama-2-70b.yaml"), 68.5, 69.5);
        Assert.InRange(Billions("llama-30b.yaml"), 32.0, 33.0);
        Assert.InRange(Billions("opt-66b.yaml"), 65.0, 66.5);
        Assert.InRange(Billions("llama-3-8b.yaml"), 7.9, 8.1);
    }
}
