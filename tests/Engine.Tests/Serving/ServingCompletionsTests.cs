using System.Net;
using System.Text.Json;
using Xunit;

namespace OServe.Engine.Tests.Serving;

/// <summary>/v1/completions over raw HTTP (OpenAI's .NET SDK 2.x has no legacy completions client) and the SSE framing of both routes.</summary>
public sealed class ServingCompletionsTests
{
    [Fact]
    public async Task Completion_returns_openai_shaped_json_with_usage()
    {
        var engine = new FakeEngine();
        await using var server = await ServingTestServer.StartAsync(engine);

        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":2,"user":"ignored"}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = await ServingTestServer.ReadJsonAsync(response);
        Assert.StartsWith("cmpl-", body.GetProperty("id").GetString());
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.Equal("fake-model", body.GetProperty("model").GetString());
        Assert.InRange(body.GetProperty("created").GetInt64(), DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 60, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        var choice = Assert.Single(body.GetProperty("choices").EnumerateArray());
        Assert.Equal(0, choice.GetProperty("index").GetInt32());
        Assert.Equal("Once upon", choice.GetProperty("text").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);
        var usage = body.GetProperty("usage");
        Assert.Equal(3, usage.GetProperty("prompt_tokens").GetInt32()); // BOS + 'H' + 'i'
        Assert.Equal(2, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(5, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal([FakeEngine.Bos, 'H' + 10, 'i' + 10], engine.LastRequest!.PromptTokens);
    }

    [Fact]
    public async Task Completion_accepts_token_ids_and_a_single_element_prompt_list()
    {
        var engine = new FakeEngine();
        await using var server = await ServingTestServer.StartAsync(engine);

        using var ids = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":[5,6,7],"max_tokens":1}""");
        Assert.Equal(HttpStatusCode.OK, ids.StatusCode);
        Assert.Equal([5, 6, 7], engine.LastRequest!.PromptTokens);

        using var nested = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":[[8,9]],"max_tokens":1}""");
        Assert.Equal(HttpStatusCode.OK, nested.StatusCode);
        Assert.Equal([8, 9], engine.LastRequest!.PromptTokens);

        using var one = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":["A"],"max_tokens":1}""");
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal([FakeEngine.Bos, 'A' + 10], engine.LastRequest!.PromptTokens);
    }

    [Fact]
    public async Task Streaming_completion_frames_each_token_as_data_event_then_usage_then_done()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync("/v1/completions",
            """{"model":"fake-model","prompt":"Hi","max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}""");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = SseEvents(await response.Content.ReadAsStringAsync());
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.Equal(4, chunks.Count); // three tokens, then the usage chunk
        Assert.All(chunks, c => Assert.Equal("text_completion", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        var texts = chunks.Take(3).Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(["Once", " upon", " a"], texts);
        var reasons = chunks.Take(3).Select(c => c.GetProperty("choices")[0].GetProperty("finish_reason"));
        Assert.Equal([JsonValueKind.Null, JsonValueKind.Null, JsonValueKind.String], reasons.Select(r => r.ValueKind));
        Assert.Equal("length", chunks[2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, chunks[3].GetProperty("choices").GetArrayLength());
        Assert.Equal(3, chunks[3].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(3, chunks[3].GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Streaming_without_include_usage_sends_no_usage_chunk()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":2,"stream":true}""");

        var events = SseEvents(await response.Content.ReadAsStringAsync());
        Assert.Equal(["Once", " upon", "[DONE]"], events.Select(e => e == "[DONE]" ? e : JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.DoesNotContain(events, e => e.Contains("\"usage\""));
    }

    [Fact]
    public async Task Streaming_chat_opens_with_the_role_and_ends_with_usage_and_done()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync("/v1/chat/completions",
            """{"model":"fake-model","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":2,"stream":true,"stream_options":{"include_usage":true}}""");

        var events = SseEvents(await response.Content.ReadAsStringAsync());
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        var first = chunks[0].GetProperty("choices")[0].GetProperty("delta");
        Assert.Equal("assistant", first.GetProperty("role").GetString());
        Assert.Equal("", first.GetProperty("content").GetString());
        Assert.Equal("Once", chunks[1].GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal(" upon", chunks[2].GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString());
        Assert.Equal("length", chunks[2].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(2, chunks[3].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(4, chunks.Count);
    }

    [Fact]
    public async Task Chat_completion_non_streaming_json_shape()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        using var response = await server.PostAsync("/v1/chat/completions",
            """{"model":"fake-model","messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":1}""");

        var body = await ServingTestServer.ReadJsonAsync(response);
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        var choice = body.GetProperty("choices")[0];
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("Once", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(1, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    /// <summary>Splits an SSE body into its data payloads, checking the framing on the way.</summary>
    internal static List<string> SseEvents(string body)
    {
        Assert.EndsWith("\n\n", body);
        var events = body[..^2].Split("\n\n");
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.All(events, e => Assert.DoesNotContain("\n", e));
        return [.. events.Select(e => e["data: ".Length..])];
    }
}
