using System.Reflection;
using System.Runtime.Loader;
using OServe.Engine.Scheduling;
using Xunit;

namespace OServe.Engine.Tests;

/// <summary>
/// The split between what serves (Engine.Runtime: what `oserve worker` and `oserve serve` run) and
/// what measures (Engine.Lab: simulator, benches, profiler, demo): the runtime never references the
/// lab, and the worker's command path loads none of it.
/// </summary>
[Collection(IsolatedLoadCollection.Name)]
public class LayoutTests
{
    private static readonly string[] LabNamespaces =
        ["OServe.Engine.Simulation", "OServe.Engine.Benchmarking", "OServe.Engine.Profiling", "OServe.Engine.Demo", "OServe.Engine.Cli"];

    private static Assembly Runtime => typeof(Sequence).Assembly;

    [Fact]
    public void The_runtime_references_neither_the_lab_nor_the_executable()
    {
        Assert.Equal("Engine.Runtime", Runtime.GetName().Name);
        var references = Runtime.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.Contains("OServe.Contracts", references); // the list is the real one
        Assert.DoesNotContain("Engine.Lab", references);
        Assert.DoesNotContain("oserve", references);
    }

    [Fact]
    public void No_runtime_type_lives_in_a_lab_or_cli_namespace()
    {
        var misplaced = Runtime.GetTypes()
            .Where(t => t.Namespace is { } ns && LabNamespaces.Any(lab => ns == lab || ns.StartsWith(lab + ".", StringComparison.Ordinal)))
            .Select(t => t.FullName)
            .ToList();
        Assert.Empty(misplaced);
    }

    /// <summary>
    /// A silo loads every assembly that a loaded Orleans application part names (Orleans'
    /// ReferencedAssemblyProvider), so a part naming Engine.Lab would load the lab into a running
    /// worker, after the command-line checks below. Only Engine.Runtime is a part; the executable and
    /// the lab are not, and nothing names the lab.
    /// </summary>
    [Fact]
    public void Only_the_runtime_is_an_orleans_application_part()
    {
        var lab = typeof(OServe.Engine.Simulation.PlanningException).Assembly;
        var exe = Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "oserve.dll"));
        Assert.Equal("Engine.Lab", lab.GetName().Name);
        Assert.Contains("Engine.Runtime", ApplicationParts(Runtime)); // the check reads real attributes
        Assert.DoesNotContain("Engine.Lab", ApplicationParts(Runtime));
        Assert.Empty(ApplicationParts(exe));
        Assert.Empty(ApplicationParts(lab));
    }

    private static List<string> ApplicationParts(Assembly assembly) =>
        assembly.GetCustomAttributesData()
            .Where(a => a.AttributeType.Name == "ApplicationPartAttribute" && a.AttributeType.Namespace?.StartsWith("Orleans", StringComparison.Ordinal) == true)
            .Select(a => (string)a.ConstructorArguments[0].Value!)
            .ToList();

    /// <summary>
    /// `oserve worker` with a node its cluster lacks, and `oserve serve` (the front end) with a bad
    /// thread count: the CLI builds its whole command tree, parses, and runs the command's body up to
    /// the check that refuses it (the JIT compiles that body whole, so every type the command's start
    /// names is resolved). It runs in a fresh load context that records each assembly asked of it;
    /// Engine.Lab must not be among them.
    /// </summary>
    [Theory]
    [InlineData("worker --node nosuch --cluster cpu-3node", "--node: cluster")]
    [InlineData("serve --threads 0", "--threads: must be at least 1")]
    public async Task A_runtime_command_loads_no_lab_code(string commandLine, string refusal)
    {
        var (code, output, loaded) = await RunIsolatedAsync(commandLine.Split(' '));
        Assert.Equal(2, code);
        Assert.Contains(refusal, output);
        Assert.Contains("Engine.Runtime", loaded); // the probe sees what the command loads
        Assert.DoesNotContain("Engine.Lab", loaded);
    }

    [Fact]
    public async Task The_worker_help_loads_no_lab_code()
    {
        var (code, output, loaded) = await RunIsolatedAsync(["worker", "--help"]);
        Assert.Equal(0, code);
        Assert.Contains("--membership", output);
        Assert.DoesNotContain("Engine.Lab", loaded);
    }

    /// <summary>
    /// The probe's control: the fault drill's load client (a lab command) refused the same way, on a bad
    /// URL before it sends anything, does load the lab, so the worker's empty finding is not the probe's blindness.
    /// </summary>
    [Fact]
    public async Task A_lab_command_refused_the_same_way_loads_the_lab()
    {
        var (code, output, loaded) = await RunIsolatedAsync(["drill-load", "--base-url", "ftp://x"]);
        Assert.Equal(2, code);
        Assert.Contains("--base-url", output);
        Assert.Contains("Engine.Lab", loaded);
    }

    private static async Task<(int Code, string Output, IReadOnlyCollection<string> Loaded)> RunIsolatedAsync(string[] args)
    {
        var context = new RecordingLoadContext(AppContext.BaseDirectory);
        try
        {
            var cli = context.LoadFromAssemblyPath(Path.Combine(AppContext.BaseDirectory, "oserve.dll"))
                .GetType("OServe.Engine.Cli.OServeCli", throwOnError: true)!;
            var run = cli.GetMethod("RunAsync", [typeof(string[]), typeof(TextWriter), typeof(TextWriter)])!;
            var output = new StringWriter();
            int code = await (Task<int>)run.Invoke(null, [args, output, output])!;
            return (code, output.ToString(), context.Requested.ToList());
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>
    /// Loads the executable and the two engine libraries afresh and records every assembly asked of
    /// it. The rest (TorchSharp, Orleans, the framework) it leaves to the default context, the copies
    /// the test process already runs: a second TorchSharp beside the other tests' would share their
    /// native library. A request for Engine.Lab from the fresh assemblies always comes here first.
    /// </summary>
    private sealed class RecordingLoadContext(string directory) : AssemblyLoadContext("layout-probe", isCollectible: true)
    {
        private static readonly string[] Isolated = ["oserve", "Engine.Runtime", "Engine.Lab"];
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _requested = new();

        public ICollection<string> Requested => _requested.Keys;

        protected override Assembly? Load(AssemblyName name)
        {
            _requested.TryAdd(name.Name!, 0);
            return Isolated.Contains(name.Name) ? LoadFromAssemblyPath(Path.Combine(directory, name.Name + ".dll")) : null;
        }
    }
}

/// <summary>
/// Tests that load a second copy of Engine.Runtime into a collectible load context run alone, after
/// every parallel test (xunit runs collections with parallelization disabled last): until that
/// context is collected, the process holds two Engine.Runtime assemblies, and an Orleans silo
/// started meanwhile by a cluster test registers ClusterControllerGrain twice and fails ("An entry
/// with the key clustercontroller is already present": six cluster tests failed so in one run).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IsolatedLoadCollection
{
    public const string Name = "isolated load contexts";
}
