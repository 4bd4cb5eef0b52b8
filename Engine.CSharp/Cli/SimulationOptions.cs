using System.CommandLine;
using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;

namespace OServe.Engine.Cli;

/// <summary>Options shared by <c>simulate</c> and <c>compare</c>: which trace, how much of it, at what rate, where results go.</summary>
public sealed class SimulationOptions
{
    private readonly Option<string?> _trace = new("--trace") { Description = "Trace file to use instead of the scenario's: Azure CSV, BurstGPT CSV or Mooncake JSONL, told apart by its content" };
    private readonly Option<string?> _overContext = new("--over-context")
    {
        Description = "Requests longer than the model's context: clip (shorten to fit), drop, or refuse (error); default the scenario's (clip). Always counted and reported",
    };
    private readonly Option<double> _rateScale = new("--rate-scale") { Description = "Multiply the arrival rate (2 = twice as many requests per second)", DefaultValueFactory = _ => 1.0 };
    private readonly Option<double?> _duration = new("--duration") { Description = "Use only the first SECONDS of the trace" };
    private readonly Option<string?> _output = new("--output") { Description = "Directory for JSON results and PNG plots" };
    private readonly Option<string?> _profile = new("--profile") { Description = "Cost-model profile (YAML/JSON `coefficients:`, e.g. from `oserve profile`) in place of the defaults" };
    private readonly Option<string?> _gpuProfile = GpuProfileOption.Create();
    private readonly Option<string> _service = new("--service")
    {
        Description = "Where the planners get each config's rate and latency per request type: 'simulated' (one replica simulated at a few loads, cached) or 'analytic' (the planner's closed-form steady state)",
        DefaultValueFactory = _ => "simulated",
    };

    private readonly Option<string> _verify = new("--verify")
    {
        Description = "OServe and reload: 'on' (each window's candidate plans are simulated on a workload drawn from the forecast and the best is deployed) or 'off' (the CP-SAT plan and its keep-or-switch rule only)",
        DefaultValueFactory = _ => "on",
    };

    public static SimulationOptions Create() => new();

    public void AddTo(Command command)
    {
        command.Options.Add(_trace);
        command.Options.Add(_overContext);
        command.Options.Add(_rateScale);
        command.Options.Add(_duration);
        command.Options.Add(_output);
        command.Options.Add(_profile);
        command.Options.Add(_gpuProfile);
        command.Options.Add(_service);
        command.Options.Add(_verify);
    }

    /// <summary>The cost model's coefficients: the defaults, or those of --profile, with the GPU step-time profile of --gpu-profile.</summary>
    public CostCoefficients Coefficients(ParseResult parse) => GpuProfileOption.Apply(parse.GetValue(_gpuProfile),
        parse.GetValue(_profile) is { } path ? OServe.Engine.Profiling.ProfileFile.Load(path) : CostCoefficientsModule.defaults);

    /// <summary>The planners' service model: a fresh simulated one (its cache lives as long as the command), or null for analytic.</summary>
    public IServiceModel? ServiceModel(ParseResult parse, CostCoefficients k) => parse.GetValue(_service) switch
    {
        "simulated" => new SimulatedServiceModel(k),
        "analytic" => null,
        var other => throw new CliUsageException($"--service: '{other}' is not 'simulated' or 'analytic'"),
    };

    /// <summary>Plan verification for OServe and reload, or null when --verify off.</summary>
    public VerificationOptions? Verification(ParseResult parse) => parse.GetValue(_verify) switch
    {
        "on" => new VerificationOptions(),
        "off" => null,
        var other => throw new CliUsageException($"--verify: '{other}' is not 'on' or 'off'"),
    };

    public string? OutputDir(ParseResult parse) => parse.GetValue(_output);

    /// <summary>--over-context as a policy (null: the scenario's); shared with <c>oserve plan</c>.</summary>
    public static OverContext? OverContextOption(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null => null,
        "clip" => OverContext.Clip,
        "drop" => OverContext.Drop,
        "refuse" => OverContext.Refuse,
        _ => throw new CliUsageException($"--over-context: '{text}' is not clip, drop or refuse"),
    };

    public double RateScale(ParseResult parse) => parse.GetValue(_rateScale);

    public ScenarioWorkload Load(ParseResult parse, string scenarioRef, double? rateScale = null)
    {
        var path = Catalog.ScenarioPath(scenarioRef);
        var sourced = ContractYaml.LoadScenario(path);
        var scenario = sourced.Value;
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        double scale = rateScale ?? parse.GetValue(_rateScale);
        if (!(scale > 0)) throw new CliUsageException($"--rate-scale must be positive, got {scale}");
        if (parse.GetValue(_duration) is double d && !(d > 0)) throw new CliUsageException($"--duration must be positive, got {d}");
        // Before anything is generated or allocated: a scenario too big for this machine is refused with the reason.
        SimulationBudget.Check(scenario, dir, Catalog.Cluster(scenario.Cluster, dir), Catalog.Model(scenario.Model, dir),
            parse.GetValue(_trace), scale, parse.GetValue(_duration));
        try
        {
            return ScenarioWorkload.Load(scenario, dir, (c, rel) => Catalog.Cluster(c, rel), (m, rel) => Catalog.Model(m, rel),
                parse.GetValue(_trace), scale, parse.GetValue(_duration), OverContextOption(parse.GetValue(_overContext)), sourced.Lines);
        }
        catch (ArgumentException e)
        {
            throw new CliUsageException($"{path}: {e.Message}");
        }
    }
}
