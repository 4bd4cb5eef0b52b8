using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using OServe.Contracts;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;
using OServe.Planner.Workload;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve costmodel --cluster C --model M [--workload W] [--json]</c>: what the planner believes
/// about every feasible replica shape (per-GPU prefill and decode throughput; per request type the
/// rate, TTFT and TPOT at light load and near saturation) and where each number comes from (measured
/// GPU table, fitted roofline, CPU profile, analytic roofline), so a researcher can see why a plan
/// was chosen. Also prints how well the GPU profile's fit reproduces its own measurements.
/// </summary>
public static class CostModelCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Utilizations reported: light load, and near saturation (above the planner's rho).</summary>
    public const double LightLoad = 0.05, NearSaturation = 0.9;

    public static Command Create()
    {
        var cluster = new Option<string>("--cluster") { Description = "Cluster file or built-in cluster name", Required = true };
        var model = new Option<string>("--model") { Description = "Model card file or built-in model name", Required = true };
        var workload = new Option<string?>("--workload") { Description = "Scenario or trace whose request types (k-means) are reported; default: two types, chat 1000 in / 250 out and code 2048 in / 28 out" };
        var types = new Option<int>("--types") { Description = "Request types when --workload is given (k-means k)", DefaultValueFactory = _ => 4 };
        var gpuProfile = GpuProfileOption.Create();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of tables" };
        var command = new Command("costmodel", "Per feasible replica shape: per-GPU prefill and decode throughput, and per request type the rate, TTFT and TPOT at light load and near saturation, with the source of each number.")
        {
            cluster, model, workload, types, gpuProfile, json,
        };
        command.SetAction(parse =>
        {
            var c = Catalog.Cluster(parse.GetValue(cluster)!);
            var m = Catalog.Model(parse.GetValue(model)!);
            var k = GpuProfileOption.Apply(parse.GetValue(gpuProfile), CostCoefficientsModule.defaults);
            if (parse.GetValue(types) < 1) throw new CliUsageException($"--types: must be at least 1, got {parse.GetValue(types)}");
            var requestTypes = parse.GetValue(workload) is { } w ? TypesOf(w, parse.GetValue(types)) : DefaultTypes;
            var report = CostModelReport.Build(c, m, k, requestTypes, LightLoad, NearSaturation);
            var o = parse.InvocationConfiguration.Output;
            if (parse.GetValue(json))
                o.WriteLine(JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
            else Print(o, report);
            return OServeCli.ExitOk;
        });
        return command;
    }

    public static readonly IReadOnlyList<CostModelReport.TypeSpec> DefaultTypes =
        [new("chat", 1000, 250), new("code", 2048, 28)];

    private static IReadOnlyList<CostModelReport.TypeSpec> TypesOf(string workload, int k)
    {
        var inputs = PlanningInputs.Load(workload);
        var typing = RequestTyping.fit(new TypingOptions(k, TypingOptions.Default.Seed, TypingOptions.Default.MaxIterations), inputs.Trace.Requests);
        if (typing.IsError) throw new CliUsageException($"--workload {workload}: {typing.ErrorValue}");
        return typing.ResultValue.Select(t => new CostModelReport.TypeSpec($"t{t.Id}", t.MeanInputTokens, t.MeanOutputTokens)).ToList();
    }

    private static void Print(TextWriter o, CostModelReport r)
    {
        o.WriteLine($"{r.Model} on {r.Cluster}; service estimates: the planner's analytic steady state over the step-time model below");
        if (r.Fit is { } fit)
        {
            o.WriteLine($"GPU profile: {fit.Source}");
            foreach (var kind in fit.Kinds)
                o.WriteLine(string.Create(Inv, $"  fit vs its {kind.Points} {kind.Kind} points{(kind.Kind == "mixed" ? " (held out)" : "")}: median error {100 * kind.MedianError:F1}%, p90 {100 * kind.P90Error:F1}%, max {100 * kind.MaxError:F1}%"));
        }
        foreach (var s in r.Shapes)
        {
            o.WriteLine();
            o.WriteLine(string.Create(Inv, $"{s.Shape} ({s.Gpus} GPUs): {s.Source}"));
            if (s.Infeasible is { } why)
            {
                o.WriteLine($"  infeasible: {why}");
                continue;
            }
            o.WriteLine(string.Create(Inv,
                $"  per GPU: prefill {s.PrefillTokensPerGpuSec:F0} tokens/s (4 x 2048-token prompts per step), decode {s.DecodeTokensPerGpuSec:F0} tokens/s (batch {s.DecodeBatch} at context 1024); KV {s.KvCapacityTokens} tokens; 2048-token prefill step {1000 * s.Prefill2048Sec:F1} ms, {100 * s.Prefill2048CommShare:F0}% in all-reduce"));
            o.WriteLine($"  {"type",-8} {"in/out",11} {"req/s/GPU",10} {"TTFT light",11} {"TPOT light",11} {"TTFT 90%",10} {"TPOT 90%",10}");
            foreach (var t in s.Types)
                o.WriteLine(string.Create(Inv,
                    $"  {t.Name,-8} {$"{t.InputTokens:F0}/{t.OutputTokens:F0}",11} {t.RatePerGpu,10:F3} {Ms(t.TtftLightSec),11} {Ms(t.TpotLightSec),11} {Ms(t.TtftSaturatedSec),10} {Ms(t.TpotSaturatedSec),10}"));
        }
    }

    private static string Ms(double seconds) => double.IsFinite(seconds) ? string.Create(Inv, $"{1000 * seconds:F1}ms") : "inf";
}
