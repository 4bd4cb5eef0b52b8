using System.CommandLine;
using OServe.Contracts;

namespace OServe.Engine.Cli;

/// <summary>The <c>oserve</c> command tree. Bad input ends with exit code 2 and one line per problem.</summary>
public static class OServeCli
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitBadInput = 2;

    public static RootCommand Build()
    {
        var root = new RootCommand("oserve: serve LLMs on a heterogeneous deployment planned for a workload that moves in space and time.");
        root.Subcommands.Add(ValidateCommand.Create());
        root.Subcommands.Add(PlanCommand.Create());
        root.Subcommands.Add(ForecastCommand.Create());
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(SimulateCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(CostModelCommand.Create());
        root.Subcommands.Add(SweepPlotCommand.Create());
        root.Subcommands.Add(MicroBenchCommands.BenchModel());
        root.Subcommands.Add(MicroBenchCommands.BenchScheduler());
        root.Subcommands.Add(ProfileCommand.Create());
        root.Subcommands.Add(FidelityCommand.Create());
        root.Subcommands.Add(BenchSwitchCommand.Create());
        root.Subcommands.Add(BenchHostileCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        root.Subcommands.Add(WorkerCommand.Create());
        root.Subcommands.Add(DrillLoadCommand.Create());
        root.Subcommands.Add(SelfTestCommand.Create());
        return root;
    }

    public static async Task<int> RunAsync(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var config = new InvocationConfiguration
        {
            Output = output ?? Console.Out,
            Error = error ?? Console.Error,
            // Our own handler below turns user errors into messages; anything else is a bug and keeps its trace.
            EnableDefaultExceptionHandler = false,
        };
        try
        {
            return await Build().Parse(args).InvokeAsync(config);
        }
        catch (ContractException e)
        {
            foreach (var problem in e.Errors) config.Error.WriteLine($"error {problem}");
            return ExitBadInput;
        }
        catch (OServe.Engine.Orchestration.PlanRejectedException e)
        {
            foreach (var problem in e.Errors) config.Error.WriteLine($"error {problem}");
            return ExitBadInput;
        }
        catch (OServe.Engine.Serving.ServerStartException e)
        {
            config.Error.WriteLine($"error {e.Message}");
            return ExitBadInput;
        }
        catch (CliUsageException e)
        {
            config.Error.WriteLine($"error {e.Message}");
            return ExitBadInput;
        }
        // The lab's errors are matched in methods of their own: a catch clause naming a lab type would
        // load Engine.Lab whenever this method runs, and `oserve worker` must load none of the lab;
        // last, so that the errors above (a worker's bad input among them) never reach the filter.
        catch (Exception e) when (LabErrors.Handles(e))
        {
            return LabErrors.Report(e, config.Error);
        }
    }
}

/// <summary>A command-line value that is well-formed but unusable (names the option and why).</summary>
public sealed class CliUsageException(string message) : Exception(message);
