using System.CommandLine;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Planner.Planning;
using OServe.Planner.Workload;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve plan</c>: plans a deployment and routing for a workload (one plan from the workload's
/// mean rates, or with --schedule one plan per window: forecast, plan, switch) and writes YAML.
/// </summary>
public static class PlanCommand
{
    public static Command Create()
    {
        var workload = new Option<string>("--workload") { Description = "A scenario (YAML file or built-in name) or a trace file (Azure, BurstGPT, Mooncake)", DefaultValueFactory = _ => "llama2-70b-azure-conv" };
        var cluster = new Option<string?>("--cluster") { Description = "Cluster YAML or built-in name (default: the scenario's)" };
        var model = new Option<string?>("--model") { Description = "Model card YAML or built-in name (default: the scenario's)" };
        var window = new Option<double>("--window") { Description = "Window length, seconds", DefaultValueFactory = _ => 60 };
        var types = new Option<int?>("--types") { Description = "Request types (k of the k-means typing); default: the scenario's, else 4" };
        var current = new Option<string?>("--current") { Description = "The plan now running: the new plan prices the switch from it" };
        var planner = new Option<string?>("--planner") { Description = "cpsat, static or paper-heuristic (default: the scenario's, else cpsat)" };
        var schedule = new Option<bool>("--schedule") { Description = "Plan every window of the trace (forecast -> plan -> switch) and write a plan schedule" };
        var maxWindows = new Option<int>("--max-windows") { Description = "With --schedule: plan at most this many windows (0 = all)", DefaultValueFactory = _ => 0 };
        var profile = new Option<string?>("--profile") { Description = "Cost-model profile (coefficients measured by `oserve profile`)" };
        var constraintsFile = new Option<string?>("--constraints")
        {
            Description = "YAML file with a `constraints:` list (max_replicas, keep_free, pin, max_tp, max_pp, no_cross_node_pp; see README-constraints.md), added to the scenario's",
        };
        var overContext = new Option<string?>("--over-context")
        {
            Description = "Requests longer than the model's context: clip (shorten to fit), drop, or refuse (error); default the scenario's (clip). Always counted and reported",
        };
        var gpuProfile = GpuProfileOption.Create();
        var output = new Option<string?>("--output", "-o") { Description = "Where to write the YAML (default plan.yaml, or schedule.yaml with --schedule)" };
        var command = new Command("plan", "Plan a heterogeneous deployment (replicas, TP/PP, routing per request type, switch steps) with CP-SAT or a baseline, and write it as YAML.")
        {
            workload, cluster, model, window, types, current, planner, schedule, maxWindows, profile, gpuProfile, constraintsFile, overContext, output,
        };
        command.SetAction(parse =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            var inputs = PlanningInputs.Load(parse.GetValue(workload)!);
            var theCluster = inputs.Cluster(parse.GetValue(cluster));
            var theModel = inputs.Model(parse.GetValue(model));
            var windowS = parse.GetValue(window);
            if (!(windowS > 0)) throw new CliUsageException($"--window: must be a positive number of seconds, got {windowS}");
            var numTypes = parse.GetValue(types) ?? inputs.Scenario?.Workload.NumTypes ?? 4;
            if (numTypes < 1) throw new CliUsageException($"--types: must be at least 1, got {numTypes}");
            var options = (inputs.Scenario?.Planner ?? new PlannerOptions()) with { };
            if (parse.GetValue(planner) is { } kind) options = options with { Kind = ParseKind(kind) };
            var slo = inputs.Scenario?.Slo ?? new Slo();
            var coefficients = GpuProfileOption.Apply(parse.GetValue(gpuProfile), PlanningInputs.Coefficients(parse.GetValue(profile)));
            var constraints = inputs.Constraints(theCluster, parse.GetValue(constraintsFile));
            stdout.WriteLine($"workload: {inputs.Trace.Source}, {inputs.Trace.Requests.Length} requests over {inputs.Trace.DurationSec:F0} s");
            var policy = SimulationOptions.OverContextOption(parse.GetValue(overContext)) ?? inputs.Scenario?.Workload.OverContext ?? OverContext.Clip;
            var limited = ContextLimit.apply(policy, theModel.MaxContext, inputs.Trace);
            if (limited.IsError) throw new CliUsageException($"--workload {parse.GetValue(workload)}: {limited.ErrorValue}");
            var (trace, context) = limited.ResultValue;
            // Printed by the plan's (or the schedule's) summary.
            var contextNote = $"{theModel.Name}: {context.Describe()}";

            if (parse.GetValue(schedule))
            {
                var request = new ScheduleRequest(theCluster, theModel, trace)
                {
                    NumTypes = numTypes, WindowS = windowS, MaxWindows = parse.GetValue(maxWindows), Slo = slo, Options = options, Coefficients = coefficients,
                    ContextNote = contextNote, ConstraintSpecs = constraints,
                };
                var outcome = Planning.planSchedule(request);
                if (outcome.IsError) return Failed(stderr, outcome.ErrorValue);
                var s = outcome.ResultValue;
                foreach (var p in s.Schedule.Plans) PlanChecks.EnsureValid(p, theCluster, theModel);
                stdout.Write(s.Summary);
                var path = parse.GetValue(output) ?? "schedule.yaml";
                ContractYaml.WriteFile(path, s.Schedule);
                stdout.WriteLine($"wrote {path}: {s.Schedule.Plans.Count} plans, {s.NumSwitches} switches");
                return OServeCli.ExitOk;
            }

            var typed = Planning.typesOfTrace(trace, numTypes);
            if (typed.IsError) return Failed(stderr, typed.ErrorValue);
            var plan = new PlanRequest(theCluster, theModel, typed.ResultValue)
            {
                Slo = slo, Options = options, WindowS = windowS, Coefficients = coefficients, ContextNote = contextNote, ConstraintSpecs = constraints,
                OverContextPerType = Planning.overContextPerType(trace, numTypes, inputs.Trace.Requests, context),
            };
            if (constraints.Count > 0)
                stdout.WriteLine($"constraints: {string.Join("; ", constraints.Select(c => c.Describe()))}");
            if (parse.GetValue(current) is { } currentPath)
            {
                var loaded = ContractYaml.LoadPlan(currentPath);
                PlanChecks.EnsureValid(loaded.Value, theCluster, theModel, loaded.Lines);
                plan.Current = loaded.Value;
            }
            var result = Planning.plan(plan);
            if (result.IsError) return Failed(stderr, result.ErrorValue);
            var o = result.ResultValue;
            PlanChecks.EnsureValid(o.Plan, theCluster, theModel);
            stdout.Write(o.Summary);
            var file = parse.GetValue(output) ?? "plan.yaml";
            ContractYaml.WriteFile(file, o.Plan);
            stdout.WriteLine($"wrote {file}: plan v{o.Plan.Version}, {o.Plan.Replicas.Count} replicas on {o.Plan.Replicas.Sum(r => r.Devices.Count)} of {theCluster.NumGpus} GPUs");
            return OServeCli.ExitOk;
        });
        return command;
    }

    internal static PlannerKind ParseKind(string text) => text.Trim().ToLowerInvariant() switch
    {
        "cpsat" or "cp-sat" => PlannerKind.Cpsat,
        "static" => PlannerKind.Static,
        "paper-heuristic" or "paper_heuristic" or "heuristic" => PlannerKind.PaperHeuristic,
        _ => throw new CliUsageException($"--planner: '{text}' is not one of cpsat, static, paper-heuristic"),
    };

    /// <summary>The planner could not plan: each reason on its own line, exit code 1.</summary>
    private static int Failed(TextWriter error, IEnumerable<PlanError> errors)
    {
        error.WriteLine("error cannot plan this workload:");
        foreach (var e in errors)
            error.WriteLine(e.Field.Length > 0 ? $"  {e.Field}: {e.Message}" : $"  {e.Message}");
        return OServeCli.ExitFailure;
    }
}
