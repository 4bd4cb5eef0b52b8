using System.CommandLine;
using System.Globalization;
using OServe.Engine.Profiling;
using OServe.Models;

namespace OServe.Engine.Cli;

/// <summary><c>oserve profile --calibration FILE ...</c>: the options of the layer-by-layer comparison with a GPU calibration file.</summary>
internal sealed class CalibrationOptions
{
    private readonly Option<string?> file = new("--calibration") { Description = "Compare the engine layer by layer with this GPU calibration file (../shared/calibration/h200-shapes.json) instead of profiling" };
    private readonly Option<string?> models = new("--calibration-models") { Description = "Comma-separated models of the file to compare (default: all with a Llama card)" };
    private readonly Option<string?> tps = new("--calibration-tps") { Description = "Comma-separated TP degrees to compare (default: all)" };
    private readonly Option<int> layers = new("--calibration-layers") { Description = "Extra layers of the larger stack (per-layer time = slope between 1 and 1 + this)", DefaultValueFactory = _ => 4 };
    private readonly Option<int> maxStepTokens = new("--max-step-tokens") { Description = "Skip shapes with more tokens in one step (bounds a CPU run)", DefaultValueFactory = _ => int.MaxValue };
    private readonly Option<double> kvBudget = new("--kv-budget-gib") { Description = "KV cache memory the comparison may use; larger decode shapes are skipped", DefaultValueFactory = _ => 24 };
    private readonly Option<double> budget = new("--budget-s") { Description = "Stop starting new shapes after this many seconds", DefaultValueFactory = _ => 120 };
    private readonly Option<string> comparisonOutput = new("--comparison-output") { Description = "JSON file for the comparison", DefaultValueFactory = _ => "calibration-comparison.json" };

    public CalibrationOptions(Command command)
    {
        foreach (var option in new Option[] { file, models, tps, layers, maxStepTokens, kvBudget, budget, comparisonOutput })
            command.Options.Add(option);
    }

    public bool IsRequested(ParseResult parse) => parse.GetValue(file) is not null;

    public int Run(ParseResult parse, ModelChoice choice, TextWriter io)
    {
        string path = parse.GetValue(file)!;
        CalibrationShapes.File shapes;
        try
        {
            shapes = CalibrationShapes.Read(path);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new CliUsageException($"--calibration {path}: {e.Message}");
        }
        var device = choice.ResolveDevice(parse);
        var dtype = choice.ResolveDType(parse, device);
        var options = new CalibrationComparisonOptions
        {
            Device = device,
            DType = dtype,
            Models = parse.GetValue(models)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
            Tps = parse.GetValue(tps) is { } t ? t.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= 1 ? v
                    : throw new CliUsageException($"--calibration-tps: '{x}' is not a positive integer")).ToArray() : null,
            Layers = parse.GetValue(layers) is var l && l >= 1 ? l : throw new CliUsageException($"--calibration-layers: must be at least 1, got {l}"),
            MaxStepTokens = parse.GetValue(maxStepTokens) is var m && m >= 1 ? m : throw new CliUsageException($"--max-step-tokens: must be at least 1, got {m}"),
            KvBudgetGib = parse.GetValue(kvBudget) is var k && k > 0 ? k : throw new CliUsageException($"--kv-budget-gib: must be positive, got {k}"),
            BudgetSeconds = parse.GetValue(budget) is var b && b > 0 ? b : throw new CliUsageException($"--budget-s: must be positive, got {b}"),
            Seed = parse.GetValue(choice.Seed),
        };
        io.WriteLine($"calibration comparison on {DeviceSelection.Describe(device)} in {dtype} against {path} ({shapes.Gpu}, {shapes.Entries.Count} model/TP entries)");
        var cards = Catalog.AllModels();
        var rows = CalibrationComparison.Run(shapes, options,
            name => cards.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase)), io);
        CalibrationReport.Print(io, shapes, rows);
        var outPath = parse.GetValue(comparisonOutput)!;
        CalibrationReport.WriteJson(outPath, shapes, rows, DeviceSelection.Describe(device), dtype.ToString());
        io.WriteLine($"wrote {outPath}");
        return rows.Any(r => r.MsPerLayer is not null) ? OServeCli.ExitOk : OServeCli.ExitFailure;
    }
}
