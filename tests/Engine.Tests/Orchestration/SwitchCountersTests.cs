using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OServe.Contracts.Yaml;
using OServe.Engine.Serving;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Orchestration;

/// <summary>
/// /metrics adds up across live plan switches and client aborts: the token counters equal what the
/// clients were told (usage, /tokenize), never go backwards at any scrape, and every aborted
/// request is counted under finished_reason="abort".
/// </summary>
public sealed class SwitchCountersTests
{
    [Fact]
    public async Task Counters_equal_the_clients_sums_across_switches_under_load_and_count_aborts()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas(1));
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app), Timeout = TimeSpan.FromMinutes(2) };
        var scrapes = new ConcurrentQueue<Counters>();
        using var stopScraping = new CancellationTokenSource();
        var scraper = Task.Run(async () =>
        {
            while (!stopScraping.IsCancellationRequested)
            {
                scrapes.Enqueue(await ScrapeAsync(http));
                await Task.Delay(10);
            }
        });

        // Phase 1: whole requests while the plan switches three times (each switch moves requests in flight).
        var completed = Enumerable.Range(0, 24).Select(async i =>
        {
            await Task.Delay(40 * i);
            using var response = await http.PostAsJsonAsync("/v1/completions",
                new { model = ModelName, prompt = Prompt(i), max_tokens = 8 + i % 24, temperature = 0, ignore_eos = true });
            response.EnsureSuccessStatusCode();
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var usage = body.RootElement.GetProperty("usage");
            return (Prompt: usage.GetProperty("prompt_tokens").GetInt64(), Completion: usage.GetProperty("completion_tokens").GetInt64());
        }).ToList();
        foreach (var (plan, wait) in new[] { (OneReplica(2), 150), (TwoReplicas(3), 300), (OneReplica(4), 300) })
        {
            await Task.Delay(wait);
            using var put = await http.PutAsync("/v1/plan", new StringContent(ContractYaml.Write(plan), Encoding.UTF8, "text/yaml"));
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        }
        var usages = await Task.WhenAll(completed);
        var afterPhase1 = await QuiescentAsync(http, runtime);
        Assert.Equal(usages.Sum(u => u.Prompt), afterPhase1.PromptTokens);
        Assert.Equal(usages.Sum(u => u.Completion), afterPhase1.GenerationTokens);
        Assert.Equal(usages.Length, afterPhase1.Stop + afterPhase1.Length);
        Assert.Equal(0, afterPhase1.Abort);

        // Phase 2: clients that leave after their first token, across one more switch.
        var aborted = Enumerable.Range(0, 6).Select(async i =>
        {
            using var count = await http.PostAsJsonAsync("/tokenize", new { prompt = Prompt(100 + i) });
            using var counted = JsonDocument.Parse(await count.Content.ReadAsStringAsync());
            using var leave = new CancellationTokenSource();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
            {
                Content = JsonContent.Create(new { model = ModelName, prompt = Prompt(100 + i), max_tokens = 400, ignore_eos = true, stream = true }),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, leave.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(leave.Token));
            Assert.StartsWith("data: ", await reader.ReadLineAsync(leave.Token));
            leave.Cancel();
            return counted.RootElement.GetProperty("count").GetInt64();
        }).ToList();
        using (var put = await http.PutAsync("/v1/plan", new StringContent(ContractYaml.Write(TwoReplicas(5)), Encoding.UTF8, "text/yaml")))
            Assert.True(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        var abortedPrompts = await Task.WhenAll(aborted);
        var end = await QuiescentAsync(http, runtime, expectedAborts: abortedPrompts.Length);
        stopScraping.Cancel();
        await scraper;

        Assert.Equal(abortedPrompts.Length, end.Abort);
        Assert.Equal(afterPhase1.PromptTokens + abortedPrompts.Sum(), end.PromptTokens);
        Assert.True(end.GenerationTokens >= afterPhase1.GenerationTokens + abortedPrompts.Length, "each aborted request generated at least its first token");
        Assert.Equal(afterPhase1.Stop + afterPhase1.Length, end.Stop + end.Length);
        var series = scrapes.ToList();
        Assert.True(series.Count > 10, $"only {series.Count} scrapes");
        for (int k = 1; k < series.Count; k++)
        {
            Assert.True(series[k].PromptTokens >= series[k - 1].PromptTokens, $"prompt_tokens_total went back at scrape {k}");
            Assert.True(series[k].GenerationTokens >= series[k - 1].GenerationTokens, $"generation_tokens_total went back at scrape {k}");
        }
    }

    private sealed record Counters(double PromptTokens, double GenerationTokens, double Stop, double Length, double Abort);

    /// <summary>Waits until the engines are idle and the abort count is in, then scrapes.</summary>
    private static async Task<Counters> QuiescentAsync(HttpClient http, OServe.Engine.Orchestration.PlanRuntime runtime, int expectedAborts = 0)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var snapshot = runtime.Snapshot();
            var counters = await ScrapeAsync(http);
            if ((snapshot.NumRequestsRunning + snapshot.NumRequestsWaiting == 0 && counters.Abort >= expectedAborts) || DateTime.UtcNow > deadline)
                return counters;
            await Task.Delay(50);
        }
    }

    private static async Task<Counters> ScrapeAsync(HttpClient http)
    {
        var text = await http.GetStringAsync("/metrics");
        double Sample(string series)
        {
            var match = Regex.Match(text, "^" + Regex.Escape(series) + @" (\S+)$", RegexOptions.Multiline);
            Assert.True(match.Success, $"no sample {series}");
            return double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        }
        const string M = "model_name=\"" + ModelName + "\"";
        return new Counters(
            Sample($"oserve:prompt_tokens_total{{{M}}}"), Sample($"oserve:generation_tokens_total{{{M}}}"),
            Sample($"oserve:request_success_total{{{M},finished_reason=\"stop\"}}"),
            Sample($"oserve:request_success_total{{{M},finished_reason=\"length\"}}"),
            Sample($"oserve:request_success_total{{{M},finished_reason=\"abort\"}}"));
    }
}
