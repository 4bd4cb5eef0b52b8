using System.Net;
using System.Text.RegularExpressions;
using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

/// <summary>GET /v1/models, /health and /metrics.</summary>
public sealed class ServingEndpointsTests
{
    [Fact]
    public async Task Models_lists_each_served_name_with_the_context_length()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine { MaxModelLength = 128 },
            new ServeOptions { ServedModelNames = ["tiny", "tiny-alias"] });

        using var response = await server.Client.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ServingTestServer.ReadJsonAsync(response);
        Assert.Equal("list", body.GetProperty("object").GetString());
        var models = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(["tiny", "tiny-alias"], models.Select(m => m.GetProperty("id").GetString()));
        Assert.All(models, m => Assert.Equal("model", m.GetProperty("object").GetString()));
        Assert.All(models, m => Assert.Equal(128, m.GetProperty("max_model_len").GetInt32()));
        Assert.All(models, m => Assert.Equal("oserve", m.GetProperty("owned_by").GetString()));
    }

    [Fact]
    public async Task Health_is_200_with_the_model()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.Client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await ServingTestServer.ReadJsonAsync(response);
        Assert.Equal("ok", body.GetProperty("status").GetString());
        Assert.Equal("fake-model", body.GetProperty("model").GetString());
    }

    [Fact]
    public async Task Metrics_expose_the_vllm_set_under_the_oserve_prefix()
    {
        var engine = new FakeEngine { FixedLoad = new(NumRequestsRunning: 3, NumRequestsWaiting: 2, KvCacheUsage: 0.25, 0, 0) };
        await using var server = await ServingTestServer.StartAsync(engine);
        using (var completion = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":3}"""))
            Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        using (var chat = await server.PostAsync("/v1/chat/completions", """{"model":"fake-model","messages":[{"role":"user","content":"Hi"}]}"""))
            Assert.Equal(HttpStatusCode.OK, chat.StatusCode);

        using var response = await server.Client.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        const string Model = "model_name=\"fake-model\"";
        Assert.Equal(2, Sample(text, $"oserve:time_to_first_token_seconds_count{{{Model}}}"));
        // 3 tokens give 2 gaps, the 9-token chat script 8: 10 inter-token latencies in all.
        Assert.Equal(10, Sample(text, $"oserve:inter_token_latency_seconds_count{{{Model}}}"));
        Assert.Equal(2, Sample(text, $"oserve:e2e_request_latency_seconds_count{{{Model}}}"));
        Assert.True(Sample(text, $"oserve:e2e_request_latency_seconds_sum{{{Model}}}") > 0);
        Assert.Equal(3, Sample(text, $"oserve:num_requests_running{{{Model}}}"));
        Assert.Equal(2, Sample(text, $"oserve:num_requests_waiting{{{Model}}}"));
        Assert.Equal(0.25, Sample(text, $"oserve:kv_cache_usage_perc{{{Model}}}"));
        var chatPromptTokens = engine.Encode("User: Hi\n\nAssistant:", addBos: true).Count;
        Assert.Equal(3 + chatPromptTokens, Sample(text, $"oserve:prompt_tokens_total{{{Model}}}"));
        Assert.Equal(3 + FakeEngine.DefaultScript.Count, Sample(text, $"oserve:generation_tokens_total{{{Model}}}"));
        Assert.Equal(1, Sample(text, $"oserve:request_success_total{{{Model},finished_reason=\"length\"}}"));
        Assert.Equal(1, Sample(text, $"oserve:request_success_total{{{Model},finished_reason=\"stop\"}}"));
        Assert.Contains("# TYPE oserve:time_to_first_token_seconds histogram", text);
        Assert.Contains("# TYPE oserve:kv_cache_usage_perc gauge", text);
        Assert.Contains("# TYPE oserve:generation_tokens_total counter", text);
    }

    /// <summary>The value of one sample line of the Prometheus text exposition.</summary>
    private static double Sample(string exposition, string series)
    {
        var match = Regex.Match(exposition, "^" + Regex.Escape(series) + @" (\S+)$", RegexOptions.Multiline);
        Assert.True(match.Success, $"no sample '{series}' in:\n{exposition}");
        return double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
