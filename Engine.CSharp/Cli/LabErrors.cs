using OServe.Engine.Profiling;
using OServe.Engine.Simulation;

namespace OServe.Engine.Cli;

/// <summary>
/// How the lab's user errors end a command. Apart from <see cref="OServeCli.RunAsync"/> so that the
/// lab's exception types are resolved only when an exception reaches it, never on the worker's path.
/// </summary>
internal static class LabErrors
{
    public static bool Handles(Exception e) => e is PlanningException or ProfileFileException;

    public static int Report(Exception e, TextWriter error)
    {
        switch (e)
        {
            case ProfileFileException profile:
                foreach (var problem in profile.Problems) error.WriteLine($"error {problem}");
                return OServeCli.ExitBadInput;
            default:
                error.WriteLine($"error {e.Message}");
                return OServeCli.ExitFailure;
        }
    }
}
