using System.Globalization;
using System.Text;

namespace OServe.Engine.Benchmarking;

/// <summary>
/// One row per request of a run, in the order they were sent: when, how long its prompt and answer
/// were, whether it succeeded, its TTFT and E2E latency, and its error. For finding what a
/// percentile is made of (which requests, sent when), which the summary's figures cannot show.
/// </summary>
public static class OutcomesCsv
{
    public const string Header = "index,sent_at_s,prompt_tokens,output_tokens,success,ttft_ms,e2e_ms,error";

    public static void Write(string path, IReadOnlyList<RequestOutcome> outcomes)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        Write(writer, outcomes);
    }

    public static void Write(TextWriter writer, IReadOnlyList<RequestOutcome> outcomes)
    {
        writer.WriteLine(Header);
        for (int i = 0; i < outcomes.Count; i++)
        {
            var o = outcomes[i];
            writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{i},{o.SentAtS:F4},{o.PromptLen},{o.OutputTokens},{(o.Success ? 1 : 0)},{o.Ttft * 1e3:F2},{o.Latency * 1e3:F2},{Quote(o.Error)}"));
        }
    }

    private static string Quote(string text) =>
        text.Length == 0 ? "" : "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal).Replace('\n', ' ').Replace('\r', ' ') + "\"";
}
