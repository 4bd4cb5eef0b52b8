using System.Net;
using System.Text.Json;
using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

/// <summary>Every refusal is an OpenAI-shaped error that names the request field at fault.</summary>
public sealed class ServingErrorTests
{
    private const string Completions = "/v1/completions";
    private const string Chat = "/v1/chat/completions";
    private const string Hi = """ "model":"fake-model","prompt":"Hi" """;
    private const string UserHi = """ "model":"fake-model","messages":[{"role":"user","content":"Hi"}] """;

    [Theory]
    [InlineData(Completions, """{"model":""", null, "request body: not valid JSON")]
    [InlineData(Completions, "", null, "request body: not valid JSON")]
    [InlineData(Completions, "[1,2]", null, "request body: must be a JSON object, got a list of 2 items")]
    [InlineData(Completions, """{"prompt":"Hi"}""", "model", "model: is required")]
    [InlineData(Completions, """{"model":5,"prompt":"Hi"}""", "model", "model: must be a string, got 5")]
    [InlineData(Completions, """{"model":"fake-model"}""", "prompt", "prompt: is required")]
    [InlineData(Completions, """{"model":"fake-model","prompt":5}""", "prompt", "prompt: must be a string or a list of token ids, got 5")]
    [InlineData(Completions, """{"model":"fake-model","prompt":["a","b"]}""", "prompt", "prompt: a list of 2 prompts is not supported")]
    [InlineData(Completions, """{"model":"fake-model","prompt":[1,-2]}""", "prompt[1]", "prompt[1]: must be a token id in 0..1999 (the vocabulary has 2000 tokens), got -2")]
    [InlineData(Completions, """{"model":"fake-model","prompt":[1,2000]}""", "prompt[1]", "prompt[1]: must be a token id in 0..1999 (the vocabulary has 2000 tokens), got 2000")]
    [InlineData(Completions, """{"model":"fake-model","prompt":[[1,2.5]]}""", "prompt[1]", "prompt[1]: must be a token id in 0..1999")]
    [InlineData(Completions, """{"model":"fake-model","prompt":[]}""", "prompt", "prompt: must not be empty")]
    [InlineData(Completions, "{" + Hi + ""","max_tokens":-3}""", "max_tokens", "max_tokens: must be a positive integer, got -3")]
    [InlineData(Completions, "{" + Hi + ""","max_tokens":"ten"}""", "max_tokens", "max_tokens: must be a positive integer, got \"ten\"")]
    [InlineData(Completions, "{" + Hi + ""","max_tokens":1.5}""", "max_tokens", "max_tokens: must be a positive integer, got 1.5")]
    [InlineData(Completions, "{" + Hi + ""","temperature":3}""", "temperature", "temperature: must be a number between 0 and 2, got 3")]
    [InlineData(Completions, "{" + Hi + ""","temperature":"hot"}""", "temperature", "temperature: must be a number between 0 and 2, got \"hot\"")]
    [InlineData(Completions, "{" + Hi + ""","top_p":0}""", "top_p", "top_p: must be a number in (0, 1], got 0")]
    [InlineData(Completions, "{" + Hi + ""","top_k":-2}""", "top_k", "top_k: must be an integer >= -1")]
    [InlineData(Completions, "{" + Hi + ""","seed":"x"}""", "seed", "seed: must be an integer, got \"x\"")]
    [InlineData(Completions, "{" + Hi + ""","stop":5}""", "stop", "stop: must be a string or a list of strings, got 5")]
    [InlineData(Completions, "{" + Hi + ""","stop":["a",""]}""", "stop[1]", "stop[1]: must be a non-empty string")]
    [InlineData(Completions, "{" + Hi + ""","stop_token_ids":[-1]}""", "stop_token_ids[0]", "stop_token_ids[0]: must be a token id")]
    [InlineData(Completions, "{" + Hi + ""","stop_token_ids":[2,5000]}""", "stop_token_ids[1]", "stop_token_ids[1]: must be a token id in 0..1999 (the vocabulary has 2000 tokens), got 5000")]
    [InlineData(Completions, "{" + Hi + ""","stop_token_ids":7}""", "stop_token_ids", "stop_token_ids: must be a list of token ids, got 7")]
    [InlineData(Completions, "{" + Hi + ""","ignore_eos":"yes"}""", "ignore_eos", "ignore_eos: must be true or false")]
    [InlineData(Completions, "{" + Hi + ""","stream":"true"}""", "stream", "stream: must be true or false, got \"true\"")]
    [InlineData(Completions, "{" + Hi + ""","stream_options":{"include_usage":true}}""", "stream_options", "stream_options: is only allowed when stream is true")]
    [InlineData(Completions, "{" + Hi + ""","stream":true,"stream_options":{"include_usage":"yes"}}""", "stream_options.include_usage", "stream_options.include_usage: must be true or false")]
    [InlineData(Completions, "{" + Hi + ""","n":17}""", "n", "n: must be an integer in 1..16, got 17")]
    [InlineData(Completions, "{" + Hi + ""","echo":"yes"}""", "echo", "echo: must be true or false, got \"yes\"")]
    [InlineData(Completions, "{" + Hi + ""","logprobs":21}""", "logprobs", "logprobs: must be an integer in 0..20, got 21")]
    [InlineData(Completions, "{" + Hi + ""","n":2,"best_of":1}""", "best_of", "best_of: must be at least n (2), got 1")]
    [InlineData(Completions, "{" + Hi + ""","best_of":2,"stream":true}""", "best_of", "best_of: cannot be above n when streaming")]
    [InlineData(Completions, "{" + Hi + ""","max_tokens":0}""", "max_tokens", "max_tokens: must be a positive integer, got 0")]
    [InlineData(Completions, "{" + Hi + ""","presence_penalty":0.5}""", "presence_penalty", "presence_penalty: penalties are not supported")]
    [InlineData(Completions, "{" + Hi + ""","logit_bias":{"5":1}}""", "logit_bias", "logit_bias: logit_bias is not supported")]
    [InlineData(Completions, "{" + Hi + ""","max_tokens":62}""", "max_tokens",
        "max_tokens: prompt (3 tokens) + max_tokens (62) = 65 tokens exceeds the model's maximum context length of 64 tokens; use at most 61")]
    [InlineData(Chat, """{"model":"fake-model"}""", "messages", "messages: is required")]
    [InlineData(Chat, """{"model":"fake-model","messages":[]}""", "messages", "messages: must be a non-empty list of messages")]
    [InlineData(Chat, """{"model":"fake-model","messages":["Hi"]}""", "messages[0]", "messages[0]: must be an object, got \"Hi\"")]
    [InlineData(Chat, """{"model":"fake-model","messages":[{"content":"Hi"}]}""", "messages[0].role", "messages[0].role: is required")]
    [InlineData(Chat, """{"model":"fake-model","messages":[{"role":"tool","content":"Hi"}]}""", "messages[0].role", "messages[0].role: must be one of system, developer, user, assistant, got 'tool'")]
    [InlineData(Chat, """{"model":"fake-model","messages":[{"role":"user"}]}""", "messages[0].content", "messages[0].content: is required")]
    [InlineData(Chat, """{"model":"fake-model","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}""",
        "messages[0].content[0].type", "messages[0].content[0].type: only 'text' parts are supported, got 'image_url'")]
    [InlineData(Chat, "{" + UserHi + ""","tools":[{"type":"function"}]}""", "tools", "tools: tool calling is not supported")]
    [InlineData(Chat, "{" + UserHi + ""","response_format":{"type":"json_object"}}""", "response_format", "response_format: only {\"type\": \"text\"} is supported")]
    [InlineData(Chat, "{" + UserHi + ""","max_completion_tokens":0}""", "max_completion_tokens", "max_completion_tokens: must be a positive integer, got 0")]
    [InlineData(Chat, "{" + UserHi + ""","max_tokens":60}""", "max_tokens", "exceeds the model's maximum context length of 64 tokens")]
    [InlineData(Chat, "{" + UserHi + ""","n":0}""", "n", "n: must be an integer in 1..16, got 0")]
    [InlineData(Chat, "{" + UserHi + ""","top_logprobs":2}""", "top_logprobs", "top_logprobs: needs logprobs: true")]
    [InlineData(Chat, "{" + UserHi + ""","logprobs":true,"top_logprobs":21}""", "top_logprobs", "top_logprobs: must be an integer in 0..20, got 21")]
    public async Task Bad_request_is_400_naming_the_field(string path, string body, string? param, string message)
    {
        var engine = new FakeEngine();
        await using var server = await ServingTestServer.StartAsync(engine);

        using var response = await server.PostAsync(path, body);

        var error = await AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error", param);
        Assert.Contains(message, error.GetProperty("message").GetString());
        Assert.Null(engine.LastRequest);
    }

    [Theory]
    [InlineData(Completions, "prompt")]
    [InlineData(Chat, "messages")]
    public async Task Prompt_longer_than_the_context_is_400_naming_the_prompt(string path, string param)
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine { MaxModelLength = 64 });
        var longText = new string('x', 80);
        var body = path == Completions
            ? $$"""{"model":"fake-model","prompt":"{{longText}}"}"""
            : $$"""{"model":"fake-model","messages":[{"role":"user","content":"{{longText}}"}]}""";

        using var response = await server.PostAsync(path, body);

        var error = await AssertErrorAsync(response, HttpStatusCode.BadRequest, "invalid_request_error", param);
        Assert.Contains("maximum context length of 64 tokens", error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData(Completions, "{\"model\":\"gpt-4\",\"prompt\":\"Hi\"}")]
    [InlineData(Chat, "{\"model\":\"gpt-4\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}")]
    public async Task Unknown_model_is_404_model_not_found(string path, string body)
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync(path, body);

        var error = await AssertErrorAsync(response, HttpStatusCode.NotFound, "invalid_request_error", "model");
        Assert.Equal("model_not_found", error.GetProperty("code").GetString());
        Assert.Contains("'gpt-4' is not served here; available: fake-model", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Served_model_names_replace_the_engine_name()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine(), new ServeOptions { ServedModelNames = ["alias-a", "alias-b"] });

        using var byAlias = await server.PostAsync(Completions, """{"model":"alias-b","prompt":"Hi","max_tokens":1}""");
        Assert.Equal("alias-b", (await ServingTestServer.ReadJsonAsync(byAlias)).GetProperty("model").GetString());

        using var byEngineName = await server.PostAsync(Completions, """{"model":"fake-model","prompt":"Hi"}""");
        await AssertErrorAsync(byEngineName, HttpStatusCode.NotFound, "invalid_request_error", "model");
    }

    [Fact]
    public async Task Unknown_routes_are_404_and_wrong_methods_405_in_openai_shape()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var unknown = await server.Client.GetAsync("/v1/engines");
        var error = await AssertErrorAsync(unknown, HttpStatusCode.NotFound, "invalid_request_error", null);
        Assert.Contains("GET /v1/engines", error.GetProperty("message").GetString());

        using var wrongMethod = await server.Client.GetAsync(Completions);
        await AssertErrorAsync(wrongMethod, HttpStatusCode.MethodNotAllowed, "invalid_request_error", null);
    }

    [Fact]
    public async Task Api_key_guards_every_route_but_health_missing_or_wrong_is_401()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine(), new ServeOptions { ApiKey = "s3cret" });
        const string body = """{"model":"fake-model","prompt":"Hi","max_tokens":1}""";

        using var missing = await server.PostAsync(Completions, body);
        var missingError = await AssertErrorAsync(missing, HttpStatusCode.Unauthorized, "invalid_request_error", null);
        Assert.Equal("invalid_api_key", missingError.GetProperty("code").GetString());
        Assert.Contains("Missing API key", missingError.GetProperty("message").GetString());
        Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);

        using var wrong = await server.PostAsync(Completions, body, apiKey: "s3cre");
        var wrongError = await AssertErrorAsync(wrong, HttpStatusCode.Unauthorized, "invalid_request_error", null);
        Assert.Contains("Incorrect API key", wrongError.GetProperty("message").GetString());

        using var models = await server.Client.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, models.StatusCode);

        using var right = await server.PostAsync(Completions, body, apiKey: "s3cret");
        Assert.Equal(HttpStatusCode.OK, right.StatusCode);

        using var health = await server.Client.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        foreach (var (method, path) in new[] { ("GET", "/metrics"), ("POST", "/tokenize"), ("GET", "/v1/models/fake-model"), ("GET", "/no-such-route") })
        {
            using var refused = await server.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path) { Content = new StringContent("""{"prompt":"Hi"}""") });
            await AssertErrorAsync(refused, HttpStatusCode.Unauthorized, "invalid_request_error", null);
        }
    }

    [Fact]
    public async Task Metrics_can_be_opened_for_scrapers_while_the_rest_keeps_the_key()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine(), new ServeOptions { ApiKey = "s3cret", IsMetricsOpen = true });

        using var metrics = await server.Client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        using var tokenize = await server.PostAsync("/tokenize", """{"prompt":"Hi"}""");
        Assert.Equal(HttpStatusCode.Unauthorized, tokenize.StatusCode);
    }

    [Fact]
    public async Task Engine_failure_is_a_500_that_leaks_nothing()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine { Behavior = FakeBehavior.FailBeforeFirstToken });

        using var response = await server.PostAsync(Completions, """{"model":"fake-model","prompt":"Hi"}""");

        var raw = await response.Content.ReadAsStringAsync();
        await AssertErrorAsync(response, HttpStatusCode.InternalServerError, "server_error", null);
        Assert.DoesNotContain("tensor", raw);
        Assert.DoesNotContain("InvalidOperationException", raw);
        Assert.DoesNotContain(" at ", raw);
    }

    [Fact]
    public async Task Engine_failure_mid_stream_sends_an_error_event_then_done()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine { Behavior = FakeBehavior.FailAfterFirstToken });

        using var response = await server.PostAsync(Completions, """{"model":"fake-model","prompt":"Hi","stream":true}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var events = ServingCompletionsTests.SseEvents(await response.Content.ReadAsStringAsync());
        Assert.Equal(3, events.Count);
        Assert.Equal("Once", JsonDocument.Parse(events[0]).RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
        var error = JsonDocument.Parse(events[1]).RootElement.GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.DoesNotContain("tensor", events[1]);
        Assert.Equal("[DONE]", events[2]);
    }

    internal static async Task<JsonElement> AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string type, string? param)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = await ServingTestServer.ReadJsonAsync(response);
        var error = body.GetProperty("error");
        Assert.Equal(type, error.GetProperty("type").GetString());
        if (param is null)
            Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        else
            Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.True(error.TryGetProperty("code", out _), "error.code must be present (null when there is none)");
        return error;
    }
}
