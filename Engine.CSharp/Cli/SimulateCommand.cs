using System.CommandLine;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;

namespace OServe.Engine.Cli;

/// <summary><c>oserve simulate SCENARIO [--plan P | --planner X]</c>: one system on the scenario's trace, vLLM benchmark figures.</summary>
public static class SimulateCommand
{
    public static Command Create()
    {
        var scenario = new Argument<string>("scenario") { Description = "Scenario file or built-in scenario name" };
        var plan = new Option<string?>("--plan") { Description = "A plan or plan schedule file to simulate instead of planning" };
        var planner = new Option<string>("--planner") { Description = "cpsat (OServe, per-window switching), static (best homogeneous by search), paper-heuristic", DefaultValueFactory = _ => "cpsat" };
        var switching = new Option<string>("--switching") { Description = "hot (copy shards over NVLink/IB) or reload (from storage)", DefaultValueFactory = _ => "hot" };
        var common = SimulationOptions.Create();
        var command = new Command("simulate", "Simulate one deployment (a plan file or a planner's per-window plans) on the scenario's workload and print vLLM benchmark metrics.")
        {
            scenario, plan, planner, switching,
        };
        common.AddTo(command);
        command.SetAction(parse =>
        {
            var output = parse.InvocationConfiguration.Output;
            var w = common.Load(parse, parse.GetValue(scenario)!);
            var k = common.Coefficients(parse);
            var system = ParseSystem(parse.GetValue(planner)!, parse.GetValue(switching)!);
            var result = ProgressReporter.Run(output, "simulating", w.DurationS, (_, progress) =>
            {
                if (parse.GetValue(plan) is { } planPath)
                {
                    var plans = ReadPlans(planPath, w, k);
                    var report = SystemRunner.Simulate(w, plans, k, progress);
                    return new SystemResult(new SystemPlans(ServingSystem.OServe, plans, 0, 0, plans.Count - 1, Path.GetFileName(planPath)), report);
                }
                return system == ServingSystem.StaticHomogeneous
                    ? SystemRunner.BestStatic(w, k, progress).Best
                    : Run(w, system, k, progress, common.ServiceModel(parse, k), common.Verification(parse));
            });
            ReportPrinter.PrintRun(output, w, result);
            if (common.OutputDir(parse) is { } dir)
            {
                ResultWriter.Write(dir, w, [result]);
                output.WriteLine($"wrote {dir}");
            }
            return OServeCli.ExitOk;
        });
        return command;
    }

    /// <param name="service">Rates and latencies the planner uses; null: its analytic model.</param>
    /// <param name="verification">OServe and reload: rank each window's candidate plans in the simulator on the forecast; null: the CP-SAT plan alone.</param>
    public static SystemResult Run(ScenarioWorkload w, ServingSystem system, CostCoefficients k, Action<double>? progress, IServiceModel? service = null,
        VerificationOptions? verification = null)
    {
        var plans = verification is not null && system is ServingSystem.OServe or ServingSystem.Reload
            ? VerifiedScheduler.PlanSchedule(w, system, k, service, verification)
            : SystemRunner.PlanSchedule(w, system, service: service);
        return new SystemResult(plans, SystemRunner.Simulate(w, plans.Plans, k, progress));
    }

    private static ServingSystem ParseSystem(string planner, string switching)
    {
        bool reload = switching switch
        {
            "hot" => false,
            "reload" => true,
            _ => throw new CliUsageException($"--switching: '{switching}' is not hot or reload"),
        };
        return planner switch
        {
            "cpsat" => reload ? ServingSystem.Reload : ServingSystem.OServe,
            "static" => ServingSystem.StaticHomogeneous,
            "paper-heuristic" => ServingSystem.PaperHeuristic,
            _ => throw new CliUsageException($"--planner: '{planner}' is not cpsat, static or paper-heuristic"),
        };
    }

    /// <summary>A plan file (one plan, all run long) or a schedule; plans without switch steps get the planner's hot steps.</summary>
    private static IReadOnlyList<Plan> ReadPlans(string path, ScenarioWorkload w, CostCoefficients k)
    {
        if (!File.Exists(path)) throw new CliUsageException($"--plan: file '{path}' not found");
        bool isSchedule = File.ReadLines(path).Any(l => l.StartsWith("plans:", StringComparison.Ordinal));
        var plans = new List<Plan>();
        if (isSchedule)
        {
            var schedule = ContractYaml.LoadPlanSchedule(path);
            for (int i = 0; i < schedule.Value.Plans.Count; i++)
            {
                var p = schedule.Value.Plans[i];
                PlanChecks.EnsureValid(p, w.Cluster, w.Model, schedule.Lines);
                plans.Add(i > 0 && p.Switch is null ? PlannerAdapter.WithSwitch(w.Cluster, w.Model, k, plans[^1], p, reload: false) : p);
            }
        }
        else
        {
            var plan = ContractYaml.LoadPlan(path);
            PlanChecks.EnsureValid(plan.Value, w.Cluster, w.Model, plan.Lines);
            plans.Add(plan.Value);
        }
        if (plans.Count == 0) throw new CliUsageException($"--plan: '{path}' holds no plan");
        return plans;
    }
}
