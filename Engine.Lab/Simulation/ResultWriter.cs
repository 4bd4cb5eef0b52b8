using System.Text.Json;
using System.Text.Json.Serialization;
using OServe.Contracts;
using OServe.Contracts.Yaml;

namespace OServe.Engine.Simulation;

/// <summary>Writes a run's results: results.json (every figure), one plan schedule YAML per system, and the PNG plots.</summary>
public static class ResultWriter
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public static void Write(string dir, ScenarioWorkload w, IReadOnlyList<SystemResult> results, object? extra = null)
    {
        Directory.CreateDirectory(dir);
        var doc = new
        {
            Scenario = w.Scenario.Name,
            Model = w.Model.Name,
            Cluster = w.Cluster.Name,
            Trace = w.Trace.Source,
            NumRequests = w.Requests.Length,
            // Requests longer than the model's context: how many, and whether clipped or dropped.
            Context = new
            {
                w.Context.MaxContextTokens,
                Policy = w.Context.Policy.ToString().ToLowerInvariant(),
                NumOver = w.Context.NumOver,
                NumRequestsBefore = w.Context.NumRequests,
                OverPerType = w.OverContextPerType,
            },
            w.DurationS,
            Slo = w.Scenario.Slo,
            Types = w.Types.Select(t => new { Name = $"t{t.Id}", t.MeanInputTokens, t.MeanOutputTokens, t.Share }),
            Systems = results.Select(r => new
            {
                Name = r.Plans.Label,
                r.Plans.System,
                r.Role,
                r.Plans.PlanningSeconds,
                r.Plans.MaxPlanningSeconds,
                NumPlans = r.Plans.Plans.Count,
                // Plan verification: every candidate's score on the forecast workload, per window.
                Verification = r.Plans.Choices,
                r.Report,
            }),
            Extra = extra,
        };
        File.WriteAllText(Path.Combine(dir, "results.json"), JsonSerializer.Serialize(doc, Json));
        foreach (var r in results)
        {
            var schedule = new PlanSchedule { Model = w.Model.Name, Cluster = w.Cluster.Name, WindowS = w.Scenario.Workload.WindowS, Plans = r.Plans.Plans };
            ContractYaml.WriteFile(Path.Combine(dir, $"plans-{Sanitize(r.Plans.Label)}.yaml"), schedule);
        }
        // Plots show OServe, the baselines and the static shapes with a role (best, median, worst).
        PlotWriter.WriteAll(dir, w, results.Where(r => r.IsShown).ToList());
    }

    public static string Sanitize(string name) => string.Concat(name.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' ? c : '-'));
}
