using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

/// <summary>n, best_of, echo, logprobs, GET /v1/models/{id}, the time budget and abort accounting, against the fake engine.</summary>
public sealed class ServingFeaturesTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task N_choices_come_back_indexed_with_usage_over_all_of_them()
    {
        var engine = new FakeEngine();
        await using var server = await ServingTestServer.StartAsync(engine);

        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":3,"n":3}""");

        var body = await ServingTestServer.ReadJsonAsync(response);
        var choices = body.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.All(choices, c => Assert.Equal("Once upon a", c.GetProperty("text").GetString()));
        Assert.Equal(9, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(3, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Best_of_returns_the_sequence_with_the_highest_cumulative_logprob()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        // Seeds 10, 11, 12: the fake gives 12 the best logprobs (-0.1 per token).
        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":2,"best_of":3,"seed":10,"logprobs":0}""");

        var body = await ServingTestServer.ReadJsonAsync(response);
        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.All(choice.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray(), lp => Assert.Equal(-0.1, lp.GetDouble(), 5));
        Assert.Equal(6, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Echo_with_logprobs_leads_with_the_prompt_tokens_the_first_without_a_logprob()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":2,"echo":true,"logprobs":1}""");

        var choice = (await ServingTestServer.ReadJsonAsync(response)).GetProperty("choices")[0];
        Assert.Equal("HiOnce upon", choice.GetProperty("text").GetString());
        var logprobs = choice.GetProperty("logprobs");
        Assert.Equal(5, logprobs.GetProperty("tokens").GetArrayLength()); // BOS, H, i, Once, upon
        Assert.Equal(JsonValueKind.Null, logprobs.GetProperty("token_logprobs")[0].ValueKind);
        Assert.Equal(-1, logprobs.GetProperty("token_logprobs")[1].GetDouble());
        Assert.Equal(JsonValueKind.Null, logprobs.GetProperty("top_logprobs")[0].ValueKind);
        Assert.Equal(" upon", logprobs.GetProperty("tokens")[4].GetString());
    }

    [Fact]
    public async Task Echo_with_max_tokens_0_answers_the_prompt_alone()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":0,"echo":true,"logprobs":0}""");

        var body = await ServingTestServer.ReadJsonAsync(response);
        Assert.Equal("Hi", body.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(3, body.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("tokens").GetArrayLength());
        Assert.Equal(0, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Streamed_chat_logprobs_come_with_each_token_and_n_streams_interleave()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync("/v1/chat/completions",
            """{"model":"fake-model","messages":[{"role":"user","content":"Hi"}],"max_tokens":2,"n":2,"logprobs":true,"top_logprobs":2,"stream":true}""");

        var chunks = ServingCompletionsTests.SseEvents(await response.Content.ReadAsStringAsync())[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        var byChoice = chunks.SelectMany(c => c.GetProperty("choices").EnumerateArray()).GroupBy(c => c.GetProperty("index").GetInt32()).ToList();
        Assert.Equal([0, 1], byChoice.Select(g => g.Key).Order());
        foreach (var choice in byChoice)
        {
            var tokens = choice.Where(c => c.GetProperty("logprobs").ValueKind == JsonValueKind.Object)
                .SelectMany(c => c.GetProperty("logprobs").GetProperty("content").EnumerateArray()).ToList();
            Assert.Equal(["Once", " upon"], tokens.Select(t => t.GetProperty("token").GetString()));
            Assert.All(tokens, t => Assert.Equal(2, t.GetProperty("top_logprobs").GetArrayLength()));
            Assert.Equal([79, 110, 99, 101], tokens[0].GetProperty("bytes").EnumerateArray().Select(b => b.GetInt32()));
        }
    }

    [Fact]
    public async Task A_model_is_served_by_id_and_created_is_the_same_on_every_call()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine(), new ServeOptions { ServedModelNames = ["org/tiny", "alias"] });

        using var first = await server.Client.GetAsync("/v1/models/org/tiny");
        var card = await ServingTestServer.ReadJsonAsync(first);
        Assert.Equal("org/tiny", card.GetProperty("id").GetString());
        await Task.Delay(1100);
        using var list = await server.Client.GetAsync("/v1/models");
        var listed = (await ServingTestServer.ReadJsonAsync(list)).GetProperty("data").EnumerateArray().Select(m => m.GetProperty("created").GetInt64());
        Assert.All(listed, created => Assert.Equal(card.GetProperty("created").GetInt64(), created));

        using var unknown = await server.Client.GetAsync("/v1/models/gpt-4");
        var error = await ServingErrorTests.AssertErrorAsync(unknown, HttpStatusCode.NotFound, "invalid_request_error", "model");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_request_past_its_time_budget_is_aborted_408_and_counted()
    {
        var engine = new FakeEngine { Behavior = FakeBehavior.BlockAfterFirstToken };
        await using var server = await ServingTestServer.StartAsync(engine, new ServeOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) });

        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":5}""");

        var error = await ServingErrorTests.AssertErrorAsync(response, HttpStatusCode.RequestTimeout, "timeout_error", null);
        Assert.Equal("request_timeout", error.GetProperty("code").GetString());
        Assert.Contains("after 1 generated tokens", error.GetProperty("message").GetString());
        await engine.Cancelled.Task.WaitAsync(Patience);
        Assert.Equal(1, await AbortsAsync(server));
    }

    [Fact]
    public async Task A_stream_past_its_time_budget_ends_with_an_error_event()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine { Behavior = FakeBehavior.BlockAfterFirstToken },
            new ServeOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) });

        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":5,"stream":true}""");

        var events = ServingCompletionsTests.SseEvents(await response.Content.ReadAsStringAsync());
        Assert.Equal("[DONE]", events[^1]);
        Assert.Equal("request_timeout", JsonDocument.Parse(events[^2]).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_client_that_leaves_is_counted_as_an_abort()
    {
        var engine = new FakeEngine { Behavior = FakeBehavior.BlockAfterFirstToken };
        await using var server = await ServingTestServer.StartAsync(engine);
        using var cancel = new CancellationTokenSource();

        var pending = server.Client.PostAsync("/v1/completions",
            new StringContent("""{"model":"fake-model","prompt":"Hi","max_tokens":5}""", Encoding.UTF8, "application/json"), cancel.Token);
        await engine.FirstTokenSent.Task.WaitAsync(Patience);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        await engine.Cancelled.Task.WaitAsync(Patience);

        var deadline = DateTime.UtcNow + Patience;
        while (await AbortsAsync(server) == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        Assert.Equal(1, await AbortsAsync(server));
    }

    [Fact]
    public async Task A_client_that_leaves_mid_tokenize_stops_the_tokenizer()
    {
        var tokenizing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var engine = new FakeEngine
        {
            EncodeHook = (_, token) =>
            {
                tokenizing.TrySetResult();
                // Stands for a long tokenization that checks its token as it goes.
                while (!token.IsCancellationRequested)
                    Thread.Sleep(5);
                stopped.TrySetResult();
                token.ThrowIfCancellationRequested();
                return [];
            },
        };
        await using var server = await ServingTestServer.StartAsync(engine);
        using var cancel = new CancellationTokenSource();

        var pending = server.Client.PostAsync("/v1/completions",
            new StringContent("""{"model":"fake-model","prompt":"Hi"}""", Encoding.UTF8, "application/json"), cancel.Token);
        await tokenizing.Task.WaitAsync(Patience);
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        await stopped.Task.WaitAsync(Patience);
        Assert.Null(engine.LastRequest);
    }

    private static async Task<double> AbortsAsync(ServingTestServer server)
    {
        var text = await server.Client.GetStringAsync("/metrics");
        var match = Regex.Match(text, "^oserve:request_success_total\\{model_name=\"fake-model\",finished_reason=\"abort\"\\} (\\S+)$", RegexOptions.Multiline);
        return double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
