using System.CommandLine;
using OServe.Engine.Distributed;

namespace OServe.Engine.Cli;

/// <summary>
/// <c>oserve drill-load</c>: the fault drill's client (scripts/fault-drill.sh). Streams a bounded
/// greedy load at an OpenAI-compatible server and prints one line,
/// <c>sent N, completed N, failed F, duplicated D, recovered in S s</c>; exit 0 only when F = D = 0.
/// S: from the kill to the end of the last stall (a wait over --stall-seconds for a stream's next token) that ends after it.
/// </summary>
public static class DrillLoadCommand
{
    private static readonly Option<string> BaseUrl = new("--base-url") { Description = "Server to load", DefaultValueFactory = _ => "http://127.0.0.1:8000" };
    private static readonly Option<string> Model = new("--model") { Description = "Model name the server serves", DefaultValueFactory = _ => "oserve-builtin-random" };
    private static readonly Option<int> Requests = new("--requests") { Description = "Requests to send (the load is bounded)", DefaultValueFactory = _ => 60 };
    private static readonly Option<int> Concurrency = new("--concurrency") { Description = "Requests in flight at once", DefaultValueFactory = _ => 12 };
    private static readonly Option<int> MaxTokens = new("--max-tokens") { Description = "Tokens each request asks for (greedy, ignore_eos: exactly this many)", DefaultValueFactory = _ => 48 };
    private static readonly Option<int> PromptWords = new("--prompt-words") { Description = "Words in each prompt", DefaultValueFactory = _ => 24 };
    private static readonly Option<string?> ProgressFile = new("--progress-file") { Description = "Written with the number of finished requests as they finish" };
    private static readonly Option<string?> KillMarker = new("--kill-marker") { Description = "File with the Unix time a worker was killed: recovery is measured from it" };
    private static readonly Option<double> StallSeconds = new("--stall-seconds")
    {
        Description = "A wait longer than this for a stream's next token (or its first, from the send) is a stall; 'recovered in S s' is from the kill to the end of the last stall that ends after it",
        DefaultValueFactory = _ => DrillLoad.DefaultStallSeconds,
    };
    private static readonly Option<string?> TraceFile = new("--trace-file") { Description = "Write every request's send time and token arrival times (JSON lines, Unix seconds)" };

    public static Command Create()
    {
        var command = new Command("drill-load", "The fault drill's client: a bounded streaming load; prints 'sent N, completed N, failed F, duplicated D, recovered in S s'.")
        {
            BaseUrl, Model, Requests, Concurrency, MaxTokens, PromptWords, ProgressFile, KillMarker, StallSeconds, TraceFile,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!Uri.TryCreate(parse.GetValue(BaseUrl)!.TrimEnd('/') + "/", UriKind.Absolute, out var baseUrl) || baseUrl.Scheme is not ("http" or "https"))
                throw new CliUsageException($"--base-url: '{parse.GetValue(BaseUrl)}' is not an http(s) URL");
            foreach (var (name, value) in new[] { ("--requests", parse.GetValue(Requests)), ("--concurrency", parse.GetValue(Concurrency)), ("--max-tokens", parse.GetValue(MaxTokens)), ("--prompt-words", parse.GetValue(PromptWords)) })
                if (value < 1) throw new CliUsageException($"{name}: must be at least 1, got {value}");
            if (!(parse.GetValue(StallSeconds) > 0))
                throw new CliUsageException($"--stall-seconds: must be above 0, got {parse.GetValue(StallSeconds)}");
            var result = await DrillLoad.RunAsync(new DrillLoadOptions
            {
                BaseUrl = baseUrl, Model = parse.GetValue(Model)!, NumRequests = parse.GetValue(Requests), Concurrency = parse.GetValue(Concurrency),
                MaxTokens = parse.GetValue(MaxTokens), PromptWords = parse.GetValue(PromptWords),
                ProgressFile = parse.GetValue(ProgressFile), KillMarkerFile = parse.GetValue(KillMarker),
                StallSeconds = parse.GetValue(StallSeconds), TraceFile = parse.GetValue(TraceFile),
            }, cancellationToken);
            foreach (var error in result.Errors.Take(5))
                parse.InvocationConfiguration.Error.WriteLine($"drill-load: {error}");
            if (parse.GetValue(KillMarker) is not null)
                parse.InvocationConfiguration.Error.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"drill-load: {result.NumStalled} streams stalled (waited over {parse.GetValue(StallSeconds)} s for a token) after the kill (or switch); longest stall {result.LongestStallSeconds:F1} s; the last ended {result.RecoverySeconds:F1} s after it"));
            parse.InvocationConfiguration.Output.WriteLine(result.Line);
            return result.Passed ? OServeCli.ExitOk : OServeCli.ExitFailure;
        });
        return command;
    }
}
