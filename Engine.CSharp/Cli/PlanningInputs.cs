using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using OServe.Planner.Workload;

namespace OServe.Engine.Cli;

/// <summary>
/// What `oserve plan` and `oserve forecast` read: a workload given as a scenario (a YAML file or a
/// built-in scenario name, which also names a cluster and a model) or a trace file (Azure, BurstGPT
/// or Mooncake, detected from its content).
/// </summary>
internal sealed record PlanningInputs(Trace Trace, Scenario? Scenario, string? ScenarioDir, SourceMap? ScenarioLines = null)
{
    public static PlanningInputs Load(string workload)
    {
        var isYaml = workload.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || workload.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);
        if (isYaml || !File.Exists(workload))
        {
            var path = Catalog.ScenarioPath(workload);
            var sourced = ContractYaml.LoadScenario(path);
            var scenario = sourced.Value;
            var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            var loaded = WorkloadSource.load(scenario.Workload, dir);
            if (loaded.IsError)
                throw new CliUsageException($"--workload {workload}: {string.Join("; ", loaded.ErrorValue)}");
            return new PlanningInputs(loaded.ResultValue, scenario, dir, sourced.Lines);
        }
        var trace = TraceReader.read(workload);
        if (trace.IsError)
            throw new ContractException(trace.ErrorValue.Select(e => new ContractError(e.File, e.Line, e.Field, e.Message)).ToList());
        return new PlanningInputs(trace.ResultValue, null, null);
    }

    public Cluster Cluster(string? option) =>
        option is not null ? Catalog.Cluster(option)
        : Scenario is not null ? Catalog.Cluster(Scenario.Cluster, ScenarioDir)
        : throw new CliUsageException("--cluster: required when the workload is a trace file (a scenario names its own cluster)");

    public ModelCard Model(string? option) =>
        option is not null ? Catalog.Model(option)
        : Scenario is not null ? Catalog.Model(Scenario.Model, ScenarioDir)
        : throw new CliUsageException("--model: required when the workload is a trace file (a scenario names its own model)");

    /// <summary>
    /// The scenario's constraints followed by those of <paramref name="file"/> (<c>--constraints</c>),
    /// each checked against the cluster with its own file and line in any error.
    /// </summary>
    public IReadOnlyList<ConstraintSpec> Constraints(Cluster cluster, string? file)
    {
        var list = new List<ConstraintSpec>();
        if (Scenario is not null)
        {
            PlanConstraints.EnsureValid(Scenario.Constraints, cluster, ScenarioLines);
            list.AddRange(Scenario.Constraints);
        }
        if (file is not null)
        {
            var loaded = ContractYaml.LoadConstraints(file);
            PlanConstraints.EnsureValid(loaded.Value.Constraints, cluster, loaded.Lines);
            list.AddRange(loaded.Value.Constraints);
        }
        return list;
    }

    public static CostCoefficients Coefficients(string? profile)
    {
        if (profile is null) return CostCoefficientsModule.defaults;
        var loaded = CostCoefficientsModule.load(profile);
        return loaded.IsOk ? loaded.ResultValue
            : throw new CliUsageException($"--profile {profile}: {string.Join("; ", loaded.ErrorValue)}");
    }
}
