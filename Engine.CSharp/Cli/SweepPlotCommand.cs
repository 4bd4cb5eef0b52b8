using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ScottPlot;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve sweep-plot OUT.png --x-label L X=DIR ...</c>: one curve per baseline of its P99 E2E
/// over OServe's, against a sweep parameter (skew, swing amplitude), read from the results.json of
/// several <c>compare --output DIR</c> runs. Optional reference points (the paper's reported
/// ratios) are drawn as markers.
/// </summary>
public static class SweepPlotCommand
{
    public static Command Create()
    {
        var output = new Argument<string>("output") { Description = "PNG file to write" };
        var runs = new Argument<string[]>("runs") { Description = "X=DIR pairs: the sweep parameter and a compare --output directory", Arity = ArgumentArity.OneOrMore };
        var xLabel = new Option<string>("--x-label") { Description = "Name of the sweep parameter", DefaultValueFactory = _ => "sweep parameter" };
        var title = new Option<string>("--title") { Description = "Plot title", DefaultValueFactory = _ => "P99 E2E of each baseline over OServe's" };
        var reference = new Option<string[]>("--reference") { Description = "X=RATIO points to mark (e.g. the paper's reported gains)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("sweep-plot", "Plot each baseline's P99 E2E over OServe's against a sweep parameter, from several compare runs' results.json.")
        {
            output, runs, xLabel, title, reference,
        };
        command.SetAction(parse =>
        {
            var points = parse.GetValue(runs)!.Select(Parse).OrderBy(p => p.X).ToList();
            var series = new SortedDictionary<string, List<(double X, double Ratio)>>(StringComparer.Ordinal);
            foreach (var (x, dir) in points)
                foreach (var (name, ratio) in Ratios(dir))
                    (series.TryGetValue(name, out var list) ? list : series[name] = []).Add((x, ratio));
            var plot = new Plot();
            // Systems with the same ratio at every point would draw one line over another: one line, both names.
            var curves = series.GroupBy(kv => string.Join(";", kv.Value.Select(v => v.X.ToString("R", CultureInfo.InvariantCulture) + "=" + v.Ratio.ToString("F4", CultureInfo.InvariantCulture))))
                .Select(g => (Name: string.Join(" = ", g.Select(kv => kv.Key)), Values: g.First().Value)).ToList();
            foreach (var (name, values) in curves)
            {
                var line = plot.Add.Scatter(values.Select(v => v.X).ToArray(), values.Select(v => v.Ratio).ToArray());
                line.LegendText = name;
                line.MarkerSize = 7;
            }
            var refs = (parse.GetValue(reference) ?? []).Select(Parse).ToList();
            if (refs.Count > 0)
            {
                var paper = plot.Add.Scatter(refs.Select(r => r.X).ToArray(), refs.Select(r => double.Parse(r.Dir, CultureInfo.InvariantCulture)).ToArray());
                paper.LegendText = "paper (reported)";
                paper.LineWidth = 0;
                paper.MarkerSize = 10;
                paper.MarkerShape = MarkerShape.OpenDiamond;
            }
            var unity = plot.Add.HorizontalLine(1.0);
            unity.LinePattern = LinePattern.Dashed;
            // The axis holds every measured ratio and every reference point (a paper marker must not fall off the plot).
            double top = series.Values.SelectMany(v => v).Select(v => v.Ratio)
                .Concat(refs.Select(r => double.Parse(r.Dir, CultureInfo.InvariantCulture)))
                .Where(double.IsFinite).DefaultIfEmpty(1).Max();
            plot.Axes.SetLimitsY(0, Math.Max(2.2, top * 1.1));
            plot.Title(parse.GetValue(title)!);
            plot.XLabel(parse.GetValue(xLabel)!);
            plot.YLabel("P99 E2E / OServe's (above 1: OServe faster)");
            plot.ShowLegend(Edge.Right);
            plot.SavePng(parse.GetValue(output)!, 1000, 520);
            parse.InvocationConfiguration.Output.WriteLine($"wrote {parse.GetValue(output)}: {curves.Count} curves over {points.Count} runs" +
                (curves.Count < series.Count ? $" (identical systems share a line: {string.Join("; ", curves.Where(c => c.Name.Contains(" = ")).Select(c => c.Name))})" : ""));
            return OServeCli.ExitOk;
        });
        return command;
    }

    private static (double X, string Dir) Parse(string pair)
    {
        int eq = pair.IndexOf('=');
        if (eq <= 0 || !double.TryParse(pair[..eq], NumberStyles.Float, CultureInfo.InvariantCulture, out double x))
            throw new CliUsageException($"'{pair}' is not X=VALUE with a number X");
        return (x, pair[(eq + 1)..]);
    }

    /// <summary>P99 E2E over OServe's for the vLLM default, the best static in hindsight and the heuristic of one run.</summary>
    private static IEnumerable<(string Name, double Ratio)> Ratios(string dir)
    {
        string path = Path.Combine(dir, "results.json");
        if (!File.Exists(path)) throw new CliUsageException($"{path}: not found (run compare --output {dir} first)");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var systems = doc.RootElement.GetProperty("systems").EnumerateArray().ToList();
        double P99(JsonElement s) => s.GetProperty("report").GetProperty("overall").GetProperty("e2e").GetProperty("p99").GetDouble();
        string? Role(JsonElement s) => s.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        var oserve = systems.FirstOrDefault(s => s.GetProperty("name").GetString() == "oserve");
        if (oserve.ValueKind != JsonValueKind.Object) throw new CliUsageException($"{path}: no 'oserve' system");
        double baseP99 = P99(oserve);
        foreach (var s in systems)
        {
            string name = s.GetProperty("name").GetString()!;
            string? label = name switch
            {
                "static-vllm-default" or "paper-heuristic" or "reload" => name,
                _ when Role(s)?.Contains("best static", StringComparison.Ordinal) == true => "best static in hindsight",
                _ => null,
            };
            if (label is not null) yield return (label, P99(s) / baseP99);
        }
    }
}
