using System.Globalization;
using System.Text;
using OServe.Planner.CostModel;

namespace OServe.Engine.Profiling;

/// <summary>
/// The profile file <c>oserve profile</c> writes and the cost model reads (<c>CostCoefficients.load</c>):
/// a <c>coefficients:</c> mapping of the measured step-time terms, plus the fit quality and every
/// measured point for the record (the cost model reads only <c>coefficients</c>).
/// </summary>
public static class ProfileFile
{
    public static void Write(string path, string source, StepTimeFitResult fit, IReadOnlyList<ProfileSample> samples)
    {
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("# Measured engine step time (oserve profile). Step seconds = iterationOverheadSec");
        text.AppendLine("#   + prefillSecPerToken * prefill tokens + prefillSecPerSeq * prefill chunks");
        text.AppendLine("#   + prefillSecPerAttentionPair * causal (query, key) pairs of prefill chunks");
        text.AppendLine("#   + decodeSecPerSeq * decodes + decodeSecPerContextToken * context tokens of the decodes.");
        text.AppendLine($"source: \"{source.Replace("\"", "'")}\"");
        text.AppendLine("coefficients:");
        foreach (var (key, value) in fit.Coefficients.Entries())
            text.AppendLine(string.Create(inv, $"  {key}: {value:R}"));
        text.AppendLine("fit:");
        text.AppendLine(string.Create(inv, $"  rSquared: {fit.RSquared:F5}"));
        text.AppendLine(string.Create(inv, $"  maxRelativeError: {fit.MaxRelativeError:F4}"));
        text.AppendLine(string.Create(inv, $"  meanRelativeError: {fit.MeanRelativeError:F4}"));
        text.AppendLine("points:");
        for (int i = 0; i < samples.Count; i++)
        {
            var s = samples[i];
            text.AppendLine(string.Create(inv,
                $"  - {{decodes: {s.Point.NumDecodes}, context: {s.Point.Context}, prefillTokens: {s.Point.PrefillTokens}, medianSec: {s.MedianSeconds:G6}, minSec: {s.MinSeconds:G6}, fitSec: {fit.Coefficients.Predict(s.Shape):G6}}}"));
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllText(path, text.ToString());
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
