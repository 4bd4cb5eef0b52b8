using System.Diagnostics;
using System.Text;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving.Hostile;

/// <summary>The figures `oserve bench-hostile` prints.</summary>
public sealed record HostileBenchmarkResult(
    double ColdRejectMilliseconds,
    IReadOnlyList<double> RejectMilliseconds,
    int RejectStatus,
    double CpuAfterAbortSeconds,
    int AbortedPromptStatus,
    double CpuAfterAbortUnlimitedSeconds,
    int UnlimitedStatus,
    double UnlimitedMilliseconds,
    IReadOnlyList<HostileResult> Suite);

/// <summary>
/// Measures bounded work per request against a live server: how fast a 25 MB prompt is refused,
/// how much CPU the process spends after a client abandons a 1 MB prompt (with the byte limit, and
/// with it lifted so the prompt reaches the tokenizer), and how the hostile suite fares. CPU is the
/// whole process's (server and the idle client), less its idle rate measured just before.
/// </summary>
public static class HostileBenchmark
{
    public static async Task<HostileBenchmarkResult> RunAsync(Uri server, Uri unlimitedServer, IInferenceEngine engine, ServingLimits limits,
        string model, string apiKey, int trials, TextWriter progress)
    {
        var target = new HostileTarget(model, limits.MaxPromptBytes, engine.MaxModelLength, apiKey);

        progress.WriteLine($"rejecting a 25 MB prompt, {trials} times");
        var big = HostileCases.Post("/v1/completions", Encoding.UTF8.GetBytes($$"""{"model":{{Json(model)}},"prompt":"{{new string('a', 25 << 20)}}"}"""), apiKey);
        var times = new List<double>();
        int rejectStatus = 0;
        // The first one also pays for JIT and the first connection: reported apart.
        for (int i = 0; i <= trials; i++)
        {
            var watch = Stopwatch.StartNew();
            var response = await RawHttp.SendAsync(server, big, TimeSpan.FromSeconds(60));
            times.Add(watch.Elapsed.TotalMilliseconds);
            rejectStatus = response.Status;
        }

        var megabyte = PromptOfBytes(model, 1 << 20);
        progress.WriteLine("abandoning a 1 MB prompt");
        var (cpu, status) = await CpuAfterAbortAsync(server, megabyte, apiKey);
        progress.WriteLine("abandoning a 1 MB prompt with the byte limit lifted (it reaches the tokenizer)");
        var (cpuUnlimited, unlimitedStatus) = await CpuAfterAbortAsync(unlimitedServer, megabyte, apiKey);
        var kept = Stopwatch.StartNew();
        await RawHttp.SendAsync(unlimitedServer, HostileCases.Post("/v1/completions", megabyte, apiKey), TimeSpan.FromSeconds(300));
        double unlimitedMs = kept.Elapsed.TotalMilliseconds;

        progress.WriteLine("running the hostile suite");
        var suite = await HostileRunner.RunAsync(server, HostileCases.All(target), TimeSpan.FromSeconds(60));
        return new HostileBenchmarkResult(times[0], times[1..], rejectStatus, cpu, status, cpuUnlimited, unlimitedStatus, unlimitedMs, suite);
    }

    /// <summary>A completion request whose prompt is <paramref name="bytes"/> bytes of plain words.</summary>
    private static byte[] PromptOfBytes(string model, int bytes)
    {
        var words = new StringBuilder(bytes + 16);
        while (words.Length < bytes)
            words.Append("once upon a time ");
        return Encoding.UTF8.GetBytes($$"""{"model":{{Json(model)}},"prompt":"{{words.ToString(0, bytes)}}","max_tokens":16}""");
    }

    /// <summary>
    /// Sends the request, leaves 5 ms after the body is out, and returns the process CPU seconds spent in
    /// the 2 s after leaving beyond the idle rate, with the status an unabandoned copy gets.
    /// </summary>
    private static async Task<(double CpuSeconds, int Status)> CpuAfterAbortAsync(Uri server, byte[] body, string apiKey)
    {
        var process = Process.GetCurrentProcess();
        var window = TimeSpan.FromSeconds(2);
        await Task.Delay(500); // let earlier work settle
        process.Refresh();
        var idleStart = process.TotalProcessorTime;
        await Task.Delay(window);
        process.Refresh();
        var idle = process.TotalProcessorTime - idleStart;

        using (var http = new HttpClient { BaseAddress = server })
        using (var leave = new CancellationTokenSource())
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new("application/json");
            request.Headers.Authorization = new("Bearer", apiKey);
            var sending = http.SendAsync(request, leave.Token);
            await Task.Delay(5);
            leave.Cancel();
            try { using var _ = await sending; }
            catch (OperationCanceledException) { }
            process.Refresh();
            var start = process.TotalProcessorTime;
            await Task.Delay(window);
            process.Refresh();
            var spent = process.TotalProcessorTime - start - idle;
            var answer = await RawHttp.SendAsync(server, HostileCases.Post("/v1/completions", body, apiKey), TimeSpan.FromSeconds(60));
            return (Math.Max(0, spent.TotalSeconds), answer.Status);
        }
    }

    public static void Print(HostileBenchmarkResult r, ServingLimits limits, TextWriter output)
    {
        var sorted = r.RejectMilliseconds.Order().ToList();
        output.WriteLine($"reject a 25 MB prompt: median {sorted[sorted.Count / 2]:F1} ms, max {sorted[^1]:F1} ms over {sorted.Count} trials, first (cold) {r.ColdRejectMilliseconds:F1} ms (HTTP {r.RejectStatus}; body limit {limits.MaxRequestBodyBytes} bytes)");
        output.WriteLine($"CPU after a client abandons a 1 MB prompt: {r.CpuAfterAbortSeconds:F3} s (the same prompt kept waiting gets HTTP {r.AbortedPromptStatus}; prompt limit {limits.MaxPromptBytes} bytes)");
        output.WriteLine($"CPU after a client abandons a 1 MB prompt with the byte limit lifted: {r.CpuAfterAbortUnlimitedSeconds:F3} s (kept waiting, it is tokenized and answered HTTP {r.UnlimitedStatus} in {r.UnlimitedMilliseconds:F0} ms)");
        var statuses = string.Join(", ", r.Suite.GroupBy(x => x.Response.Status).OrderBy(g => g.Key).Select(g => $"{g.Key} x{g.Count()}"));
        int fiveXx = r.Suite.Count(x => x.Response.Status >= 500);
        int crashes = r.Suite.Count(x => !x.IsAlive);
        output.WriteLine($"hostile suite: {r.Suite.Count} cases, {r.Suite.Count(x => x.IsOk)} as expected, {fiveXx} 5xx, {crashes} crashes (statuses: {statuses})");
        foreach (var failed in r.Suite.Where(x => !x.IsOk))
            output.WriteLine($"  {failed.Case}: {failed.Problem}");
    }

    private static string Json(string text) => System.Text.Json.JsonSerializer.Serialize(text);
}
