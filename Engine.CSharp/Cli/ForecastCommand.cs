using System.CommandLine;
using OServe.Planner.Planning;

namespace OServe.Engine.Cli;

/// <summary><c>oserve forecast</c>: per-type one-step-ahead RRMSE of exponential smoothing vs naive and moving average.</summary>
public static class ForecastCommand
{
    public static Command Create()
    {
        var workload = new Argument<string>("workload") { Description = "A trace file (Azure, BurstGPT, Mooncake) or a scenario (YAML file or built-in name)" };
        var window = new Option<double>("--window") { Description = "Window length, seconds", DefaultValueFactory = _ => 60 };
        var types = new Option<int>("--types") { Description = "Request types (k-means k)", DefaultValueFactory = _ => 4 };
        var season = new Option<int>("--season") { Description = "Windows per season for Holt-Winters (0: Holt only)", DefaultValueFactory = _ => 0 };
        var command = new Command("forecast", "Type a trace's requests, forecast each type's rate per window, and report RRMSE against naive and moving-average forecasts.")
        {
            workload, window, types, season,
        };
        command.SetAction(parse =>
        {
            var inputs = PlanningInputs.Load(parse.GetValue(workload)!);
            if (parse.GetValue(types) < 1) throw new CliUsageException($"--types: must be at least 1, got {parse.GetValue(types)}");
            if (parse.GetValue(season) < 0) throw new CliUsageException($"--season: must not be negative, got {parse.GetValue(season)}");
            var report = Forecasting.report(inputs.Trace, parse.GetValue(window), parse.GetValue(types), parse.GetValue(season));
            if (report.IsError) throw new CliUsageException(report.ErrorValue);
            parse.InvocationConfiguration.Output.Write(report.ResultValue.Text);
            return OServeCli.ExitOk;
        });
        return command;
    }
}
