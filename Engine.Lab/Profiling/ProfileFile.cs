using System.Globalization;
using System.Text;
using OServe.Engine.Simulation;
using OServe.Planner.CostModel;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace OServe.Engine.Profiling;

/// <summary>
/// The profile file <c>oserve profile</c> writes and the cost model reads (<c>CostCoefficients.load</c>):
/// a <c>coefficients:</c> mapping of the measured step-time terms, plus the fit quality and every
/// measured point for the record (the cost model reads only <c>coefficients</c>).
/// </summary>
public static class ProfileFile
{
    /// <param name="afterIdleFactor">How much slower a step is right after the engine sat idle (1: no different).</param>
    /// <param name="serving">The serving calibration, when it ran.</param>
    /// <param name="threads">Torch CPU threads the steps ran with (<c>fidelity</c> uses as many by default).</param>
    public static void Write(string path, string source, StepTimeFitResult fit, IReadOnlyList<ProfileSample> samples, double afterIdleFactor = 1,
        ServingCalibrationResult? serving = null, int? threads = null)
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("# Measured engine step time (oserve profile). Step seconds = iterationOverheadSec");
        text.AppendLine("#   + prefillSecPerToken * prefill tokens + prefillSecPerSeq * prefill chunks");
        text.AppendLine("#   + prefillSecPerAttentionPair * causal (query, key) pairs of prefill chunks");
        text.AppendLine("#   + decodeSecPerSeq * decodes + decodeSecPerContextToken * context tokens of the decodes.");
        text.AppendLine($"source: \"{source.Replace("\"", "'")}\"");
        if (threads is { } n) text.AppendLine(string.Create(inv, $"threads: {n}"));
        text.AppendLine("coefficients:");
        foreach (var (key, value) in fit.Coefficients.Entries())
            text.AppendLine(string.Create(inv, $"  {key}: {value:R}"));
        text.AppendLine("# A step right after the engine sat idle takes afterIdleFactor times as long (the simulator applies it).");
        text.AppendLine(string.Create(inv, $"afterIdleFactor: {afterIdleFactor:R}"));
        if (serving is not null)
        {
            text.AppendLine($"# Measured serving {serving.Workload.Replace('\n', ' ')} over HTTP: {serving.NumSteps} steps, {serving.NumRequests} requests.");
            text.AppendLine("# While serving, a step takes its kind's factor times the profile's time; each request spends frontendSec outside the engine.");
            text.AppendLine(string.Create(inv, $"servingDecodeStepFactor: {serving.Factors.DecodeOnly:R}"));
            text.AppendLine(string.Create(inv, $"servingPromptStepFactor: {serving.Factors.WithPrompt:R}"));
            text.AppendLine(string.Create(inv, $"frontendSec: {serving.FrontendSeconds:R}"));
        }
        text.AppendLine("fit:");
        text.AppendLine(string.Create(inv, $"  rSquared: {fit.RSquared:F5}"));
        text.AppendLine(string.Create(inv, $"  maxRelativeError: {fit.MaxRelativeError:F4}"));
        text.AppendLine(string.Create(inv, $"  meanRelativeError: {fit.MeanRelativeError:F4}"));
        text.AppendLine("points:");
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            text.AppendLine(string.Create(inv,
                $"  - {{decodes: {s.Point.NumDecodes}, context: {s.Point.Context}, prefillTokens: {s.Point.PrefillTokens}, medianSec: {s.MedianSeconds:G9}, minSec: {s.MinSeconds:G9}, fitSec: {fit.Coefficients.Predict(s.Shape):G9}}}"));
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, text.ToString());
    }

    /// <summary>
    /// The measured grid of a profile (<c>points:</c>, each point's median), for
    /// <see cref="MeasuredIterationTime"/>'s residual table. Empty when the file has no points (a
    /// hand-written profile of coefficients only). Errors name the file, line and field.
    /// </summary>
    private static IReadOnlyList<MeasuredStep> Points(YamlMappingNode? root, string path)
    {
        if (root is null || !root.Children.TryGetValue(new YamlScalarNode("points"), out var node))
            return [];
        if (node is not YamlSequenceNode sequence)
            throw new ProfileFileException([$"{path}:{node.Start.Line}: points: must be a list of {{decodes, context, prefillTokens, medianSec}}"]);
        var points = new List<MeasuredStep>();
        var problems = new List<string>();
        foreach (var item in sequence)
        {
            if (item is not YamlMappingNode map)
            {
                problems.Add($"{path}:{item.Start.Line}: points: each point must be a mapping");
                continue;
            }
            double Field(string name, bool whole)
            {
                if (!map.Children.TryGetValue(new YamlScalarNode(name), out var v) || v is not YamlScalarNode { Value: { } text })
                {
                    problems.Add($"{path}:{map.Start.Line}: points.{name}: missing");
                    return double.NaN;
                }
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) || !double.IsFinite(x) || x < 0 || (whole && x != Math.Floor(x)))
                {
                    problems.Add($"{path}:{v.Start.Line}: points.{name}: '{text}' is not a {(whole ? "whole number" : "number")} >= 0");
                    return double.NaN;
                }
                return x;
            }
            double decodes = Field("decodes", true), context = Field("context", true), prefill = Field("prefillTokens", true), seconds = Field("medianSec", false);
            if (double.IsNaN(decodes + context + prefill + seconds)) continue;
            points.Add(new MeasuredStep((int)decodes, (int)context, (int)prefill, seconds));
        }
        if (problems.Count > 0) throw new ProfileFileException(problems);
        return points;
    }

    /// <summary>A top-level number of the profile (<paramref name="absent"/> when missing); errors name the file, line and key.</summary>
    private static double Scalar(YamlMappingNode? root, string path, string key, double absent, bool mayBeZero)
    {
        if (root is null || !root.Children.TryGetValue(new YamlScalarNode(key), out var node))
            return absent;
        if (node is YamlScalarNode { Value: { } text }
            && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x) && (x > 0 || (mayBeZero && x == 0)))
            return x;
        throw new ProfileFileException([$"{path}:{node.Start.Line}: {key}: '{node}' is not a {(mayBeZero ? "number >= 0" : "positive number")}"]);
    }

    private static YamlMappingNode? Root(string path)
    {
        YamlStream yaml = new();
        try
        {
            using var reader = new StreamReader(path);
            yaml.Load(reader);
        }
        catch (YamlException e)
        {
            throw new ProfileFileException([$"{path}:{e.Start.Line}: {e.Message}"]);
        }
        return yaml.Documents.Count == 0 ? null : yaml.Documents[0].RootNode as YamlMappingNode;
    }

    /// <summary>The torch CPU threads the profile was measured with (<c>threads:</c>); null when the file does not say.</summary>
    public static int? LoadThreads(string path)
    {
        var root = Root(path);
        if (root is null || !root.Children.TryGetValue(new YamlScalarNode("threads"), out var node))
            return null;
        if (node is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1)
            return n;
        throw new ProfileFileException([$"{path}:{node.Start.Line}: threads: '{node}' is not a whole number >= 1"]);
    }

    /// <summary>The step-time model of a profile file: its coefficients and, when it has them, its measured points.</summary>
    /// <exception cref="ProfileFileException">Also when the file holds no measured step-time terms (a planner profile of hardware efficiencies).</exception>
    public static MeasuredIterationTime LoadStepTime(string path)
    {
        var coefficients = Load(path);
        if (!CostCoefficientsModule.isMeasured(coefficients))
            throw new ProfileFileException([$"{path}: holds no measured step-time terms; write it with `oserve profile`"]);
        var root = Root(path);
        var points = Points(root, path);
        double afterIdle = Scalar(root, path, "afterIdleFactor", 1, mayBeZero: false);
        var serving = new ServingFactors(
            Scalar(root, path, "servingDecodeStepFactor", 1, mayBeZero: false),
            Scalar(root, path, "servingPromptStepFactor", 1, mayBeZero: false));
        double frontend = Scalar(root, path, "frontendSec", 0, mayBeZero: true);
        try
        {
            return new MeasuredIterationTime(coefficients, points, afterIdle, serving, frontend);
        }
        catch (ArgumentException e)
        {
            throw new ProfileFileException([.. e.Message.Split(Environment.NewLine).Select(line => $"{path}: points: {line}")]);
        }
    }

    /// <summary>The cost model's coefficients with the profile applied; errors name the file and key.</summary>
    public static CostCoefficients Load(string path)
    {
        var loaded = CostCoefficientsModule.load(path);
        if (loaded.IsError) throw new ProfileFileException(loaded.ErrorValue.ToList());
        return loaded.ResultValue;
    }
}

/// <summary>A profile file that cannot be used; one line per problem, each naming the file.</summary>
public sealed class ProfileFileException(IReadOnlyList<string> problems) : Exception(string.Join(Environment.NewLine, problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
