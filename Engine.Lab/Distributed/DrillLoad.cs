using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using OServe.Engine.Benchmarking;

namespace OServe.Engine.Distributed;

/// <summary>A bounded streaming load for the fault drill: how many requests, how many at once, how long each.</summary>
public sealed record DrillLoadOptions
{
    public required Uri BaseUrl { get; init; }
    public required string Model { get; init; }
    public int NumRequests { get; init; } = 60;
    public int Concurrency { get; init; } = 12;
    public int MaxTokens { get; init; } = 48;
    public int PromptWords { get; init; } = 24;

    /// <summary>Written with the number of finished requests as they finish, so a script can act mid-load.</summary>
    public string? ProgressFile { get; init; }

    /// <summary>A file holding the Unix time (seconds) a worker was killed; recovery is measured from it.</summary>
    public string? KillMarkerFile { get; init; }

    /// <summary>A wait for a stream's next token longer than this is a stall (see <see cref="DrillLoadResult"/>).</summary>
    public double StallSeconds { get; init; } = DrillLoad.DefaultStallSeconds;

    /// <summary>Written (JSON lines) with every request's send time and token arrival times, to check the figure by hand.</summary>
    public string? TraceFile { get; init; }
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// What the clients saw. A request completed when it streamed exactly max_tokens tokens (greedy,
/// ignore_eos) and finished with "length"; duplicated when it streamed more tokens (or usage said
/// more) than it asked for; failed otherwise (an error, a broken stream, fewer tokens).
/// A stall is a wait longer than the stall threshold for a stream's next token: from the request's
/// send to its first token, or between two consecutive tokens. <see cref="RecoverySeconds"/>: from the
/// kill to the end of the last stall that ends after it, i.e. until every stream the kill held up
/// (in flight on the dead worker, or sent to it before it was declared dead) streams again; 0 when
/// nothing stalled. A stall after the kill from another cause counts too: the figure can overstate,
/// never understate. Without a kill marker: the longest wait of any stream for a token.
/// <see cref="NumStalled"/>: the streams with a stall ending after the kill; <see cref="LongestStallSeconds"/>: the longest of those stalls.
/// </summary>
public sealed record DrillLoadResult(int Sent, int Completed, int Failed, int Duplicated, double RecoverySeconds, int NumStalled, double LongestStallSeconds, IReadOnlyList<string> Errors)
{
    public bool Passed => Failed == 0 && Duplicated == 0 && Completed == Sent;

    public string Line => string.Create(CultureInfo.InvariantCulture,
        $"sent {Sent}, completed {Completed}, failed {Failed}, duplicated {Duplicated}, recovered in {RecoverySeconds:F1} s");
}

/// <summary>What one drill request saw: how it ended, its tokens (text chunks and usage), and when each token arrived (Unix seconds).</summary>
public sealed record DrillTrace(bool Finished, int NumTextChunks, int? UsageTokens, string? FinishReason, string? Error, IReadOnlyList<double> TokenTimes)
{
    /// <summary>When the request was sent (Unix seconds): a request that had no token yet at the kill waited from here.</summary>
    public double SentAt { get; init; }
}

public static class DrillLoad
{
    public static async Task<DrillLoadResult> RunAsync(DrillLoadOptions options, CancellationToken cancellationToken)
    {
        using var http = StreamingClient.CreateHttpClient(options.Concurrency);
        using var gate = new SemaphoreSlim(options.Concurrency);
        int finished = 0;
        var tasks = Enumerable.Range(0, options.NumRequests).Select(async i =>
        {
            await gate.WaitAsync(cancellationToken);
            try { return await SendAsync(http, options, i, cancellationToken); }
            finally
            {
                gate.Release();
                int n = Interlocked.Increment(ref finished);
                if (options.ProgressFile is { } progress)
                    await File.WriteAllTextAsync(progress, n.ToString(CultureInfo.InvariantCulture), CancellationToken.None);
            }
        }).ToArray();
        var outcomes = await Task.WhenAll(tasks);
        if (options.TraceFile is { } traceFile)
            await File.WriteAllLinesAsync(traceFile, outcomes.Select((trace, i) => TraceLine(i, trace)), CancellationToken.None);
        double? killedAt = options.KillMarkerFile is { } marker && File.Exists(marker)
            && double.TryParse(File.ReadAllText(marker).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var t) ? t : null;
        return Summarize(options.MaxTokens, outcomes, killedAt, options.StallSeconds);
    }

    /// <summary>The default stall threshold: well above a token's wait on the loaded 2-core machine (tenths of a second), well below a worker's failure detection (seconds).</summary>
    public const double DefaultStallSeconds = 2.0;

    /// <summary>Classifies each request and measures recovery from <paramref name="killedAt"/> (Unix seconds; null: the longest wait for a token).</summary>
    public static DrillLoadResult Summarize(int maxTokens, IReadOnlyList<DrillTrace> outcomes, double? killedAt, double stallSeconds = DefaultStallSeconds)
    {
        int completed = 0, failed = 0, duplicated = 0;
        var errors = new List<string>();
        foreach (var o in outcomes)
        {
            int tokens = o.UsageTokens ?? -1;
            if (o.NumTextChunks > maxTokens || tokens > maxTokens)
                duplicated++;
            else if (o.Error is null && o.Finished && o.FinishReason == "length" && tokens == maxTokens)
                completed++;
            else
            {
                failed++;
                errors.Add(o.Error ?? $"finish {o.FinishReason ?? "none"} after {tokens} tokens ({o.NumTextChunks} text chunks)");
            }
        }
        double recovery = 0, longest = 0;
        int stalled = 0;
        foreach (var o in outcomes)
        {
            // Every wait for a token, the first one from the send. Not "the first token after the kill":
            // tokens already on their way (sockets, the front end's buffers) still arrive just after it,
            // and the stream's pause comes after them.
            var times = o.TokenTimes.Prepend(o.SentAt).ToArray();
            bool stalledAfterKill = false;
            for (int k = 1; k < times.Length; k++)
            {
                double wait = times[k] - times[k - 1];
                if (killedAt is not { } kill)
                    recovery = Math.Max(recovery, wait);
                else if (wait > stallSeconds && times[k] > kill)
                {
                    stalledAfterKill = true;
                    recovery = Math.Max(recovery, times[k] - kill);
                    longest = Math.Max(longest, wait);
                }
            }
            if (stalledAfterKill)
                stalled++;
        }
        return new DrillLoadResult(outcomes.Count, completed, failed, duplicated, recovery, stalled, longest,
            errors.GroupBy(e => e).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} x {g.Key}").ToList());
    }

    /// <summary>One JSON line per request: its send time and token arrival times (Unix seconds).</summary>
    public static string TraceLine(int index, DrillTrace trace) =>
        JsonSerializer.Serialize(new { request = index, sent_at = trace.SentAt, token_times = trace.TokenTimes, error = trace.Error });

    private static async Task<DrillTrace> SendAsync(HttpClient http, DrillLoadOptions options, int index, CancellationToken cancellationToken)
    {
        var prompt = $"Request {index}: " + string.Join(' ', Enumerable.Range(0, options.PromptWords).Select(w => Words[(index * 7 + w * 3) % Words.Length]));
        var body = new
        {
            model = options.Model, prompt, max_tokens = options.MaxTokens, temperature = 0, ignore_eos = true,
            stream = true, stream_options = new { include_usage = true },
        };
        var times = new List<double>();
        double sentAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        int chunks = 0;
        int? usage = null;
        string? finish = null;
        bool done = false;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.BaseUrl, "v1/completions")) { Content = JsonContent.Create(body) };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
                return new DrillTrace(false, 0, null, null, $"HTTP {(int)response.StatusCode}: {Truncate(await response.Content.ReadAsStringAsync(timeout.Token))}", times) { SentAt = sentAt };
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token), Encoding.UTF8);
            while (await reader.ReadLineAsync(timeout.Token) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    continue;
                var data = line["data: ".Length..];
                if (data == "[DONE]")
                {
                    done = true;
                    break;
                }
                using var json = JsonDocument.Parse(data);
                var root = json.RootElement;
                if (root.TryGetProperty("error", out var error))
                    return new DrillTrace(false, chunks, usage, finish, "error event: " + Truncate(error.ToString()), times) { SentAt = sentAt };
                if (root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
                    usage = u.GetProperty("completion_tokens").GetInt32();
                if (root.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0)
                {
                    var choice = choices[0];
                    if (choice.TryGetProperty("text", out var text) && text.GetString() is { Length: > 0 })
                    {
                        chunks++;
                        times.Add(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
                    }
                    if (choice.TryGetProperty("finish_reason", out var reason) && reason.ValueKind == JsonValueKind.String)
                        finish = reason.GetString();
                }
            }
            return new DrillTrace(done, chunks, usage, finish, done ? null : "the stream ended without [DONE]", times) { SentAt = sentAt };
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException or JsonException)
        {
            return new DrillTrace(false, chunks, usage, finish, $"{e.GetType().Name}: {Truncate(e.Message)}", times) { SentAt = sentAt };
        }
    }

    private static string Truncate(string text) => text.Length <= 200 ? text : text[..200] + "...";

    private static readonly string[] Words =
        ["the", "river", "quiet", "engine", "north", "light", "paper", "window", "stone", "garden", "cloud", "signal", "orange", "bridge", "winter", "market"];
}
