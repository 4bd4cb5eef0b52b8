using System.CommandLine;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Planner.Planning;
using OServe.Planner.Workload;
using YamlDotNet.RepresentationModel;

namespace OServe.Engine.Cli;

/// <summary><c>oserve validate FILE...</c>: checks clusters, model cards, scenarios, plans and schedules.</summary>
public static class ValidateCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("files") { Description = "YAML files to check (kind detected from their fields)", Arity = ArgumentArity.OneOrMore };
        var cluster = new Option<string?>("--cluster") { Description = "Cluster (file or built-in name) to check plans and constraints files against; default: the plan's cluster by name" };
        var model = new Option<string?>("--model") { Description = "Model card (file or built-in name) to check plans against; default: the plan's model by name" };
        var command = new Command("validate", "Check YAML files (cluster, model card, scenario, plan, plan schedule, constraints) and report every problem with file, line and field.")
        {
            files, cluster, model,
        };
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var failed = 0;
            foreach (var file in parse.GetValue(files)!)
            {
                try
                {
                    var summary = ValidateOne(file, parse.GetValue(cluster), parse.GetValue(model));
                    output.WriteLine($"ok    {file}: {summary}");
                }
                catch (ContractException e)
                {
                    failed++;
                    foreach (var problem in e.Errors) error.WriteLine($"error {problem}");
                }
            }
            return failed == 0 ? OServeCli.ExitOk : OServeCli.ExitBadInput;
        });
        return command;
    }

    private static string ValidateOne(string file, string? clusterRef, string? modelRef)
    {
        switch (DetectKind(file))
        {
            case "plan":
                var plan = ContractYaml.LoadPlan(file);
                var c = Catalog.Cluster(clusterRef ?? plan.Value.Cluster);
                var m = Catalog.Model(modelRef ?? plan.Value.Model);
                PlanChecks.EnsureValid(plan.Value, c, m, plan.Lines);
                return $"plan v{plan.Value.Version}, {plan.Value.Replicas.Count} replicas on {plan.Value.Replicas.Sum(r => r.Devices.Count)} GPUs, valid on {c.Name} for {m.Name}";
            case "schedule":
                var schedule = ContractYaml.LoadPlanSchedule(file);
                var sc = Catalog.Cluster(clusterRef ?? schedule.Value.Cluster);
                var sm = Catalog.Model(modelRef ?? schedule.Value.Model);
                var errors = schedule.Value.Plans.SelectMany((p, i) => PlanChecks.Validate(p, sc, sm, schedule.Lines)
                    .Select(e => e with { Field = $"plans[{i}].{e.Field}" })).ToList();
                if (errors.Count > 0) throw new ContractException(errors);
                return $"plan schedule of {schedule.Value.Plans.Count} plans";
            case "cluster":
                var cluster = ContractYaml.ReadCluster(file);
                return $"cluster '{cluster.Name}', {cluster.Nodes.Count} nodes, {cluster.NumGpus} GPUs";
            case "model":
                var modelCard = ContractYaml.ReadModelCard(file);
                return $"model card '{modelCard.Name}', {modelCard.ParamCount / 1e9:F1}B parameters";
            case "scenario":
                var loadedScenario = ContractYaml.LoadScenario(file);
                var scenario = loadedScenario.Value;
                var dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
                var scenarioCluster = Catalog.Cluster(scenario.Cluster, dir);
                PlanConstraints.EnsureValid(scenario.Constraints, scenarioCluster, loadedScenario.Lines);
                var card = Catalog.Model(scenario.Model, dir);
                return $"scenario '{scenario.Name}'{ContextSummary(scenario, dir, card, loadedScenario.Lines)}";
            case "constraints":
                var set = ContractYaml.LoadConstraints(file);
                if (clusterRef is null)
                    return $"{set.Value.Constraints.Count} constraints (give --cluster to check the nodes and devices they name)";
                var target = Catalog.Cluster(clusterRef);
                PlanConstraints.EnsureValid(set.Value.Constraints, target, set.Lines);
                return $"{set.Value.Constraints.Count} constraints, valid on {target.Name}";
            default:
                var workload = ContractYaml.ReadWorkload(file);
                return $"workload '{workload.Name}'";
        }
    }

    /// <summary>
    /// How the scenario's workload meets its model's context: ", workload: N requests; M exceed the
    /// 4096-token context (clipped ...)". A scenario that refuses over-long requests and has some is an error.
    /// </summary>
    private static string ContextSummary(Scenario scenario, string dir, ModelCard model, SourceMap lines)
    {
        var trace = WorkloadSource.load(scenario.Workload, dir);
        if (trace.IsError) throw new ContractException([lines.Error("workload", string.Join("; ", trace.ErrorValue))]);
        var report = ContextLimit.report(scenario.Workload.OverContext, model.MaxContext, trace.ResultValue.Requests);
        if (scenario.Workload.OverContext == OverContext.Refuse && report.NumOver > 0)
            throw new ContractException([lines.Error("workload.over_context",
                $"refuse, but {report.NumOver} of {report.NumRequests} requests exceed {model.Name}'s {model.MaxContext}-token context: simulate and compare would stop (clip or drop them)")]);
        return $", workload: {report.NumRequests} requests from {trace.ResultValue.Source}; {model.Name}: {report.Describe()}";
    }

    /// <summary>Guesses the kind of contract from its top-level fields.</summary>
    private static string DetectKind(string file)
    {
        YamlMappingNode? root = null;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(File.ReadAllText(file)));
            root = stream.Documents.FirstOrDefault()?.RootNode as YamlMappingNode;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or YamlDotNet.Core.YamlException)
        {
            return "plan"; // the plan reader reports the I/O or syntax error with file and line
        }
        bool Has(string key) => root?.Children.ContainsKey(new YamlScalarNode(key)) == true;
        if (Has("plans")) return "schedule";
        if (Has("replicas")) return "plan";
        if (Has("nodes")) return "cluster";
        if (Has("layers")) return "model";
        if (Has("workload")) return "scenario";
        if (Has("constraints")) return "constraints";
        return "workload";
    }
}
