using Spectre.Console;

namespace OServe.Engine.Cli;

/// <summary>
/// A progress bar over virtual time while simulations run, drawn only when a terminal is attached
/// (redirected output and tests get no escape codes).
/// </summary>
public static class ProgressReporter
{
    public static bool IsInteractive(TextWriter output) =>
        ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <param name="work">Receives a callback that takes (virtual seconds reached) and a function that starts a new bar with a label.</param>
    public static T Run<T>(TextWriter output, string label, double totalSeconds, Func<Action<string>, Action<double>, T> work)
    {
        if (!IsInteractive(output))
            return work(_ => { }, _ => { });
        return AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(label, maxValue: Math.Max(1, totalSeconds));
                void Next(string name)
                {
                    task.Value = task.MaxValue;
                    task.StopTask();
                    task = ctx.AddTask(name, maxValue: Math.Max(1, totalSeconds));
                }
                var result = work(Next, t => task.Value = Math.Min(task.MaxValue, t));
                task.Value = task.MaxValue;
                return result;
            });
    }
}
