using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OServe.Engine.Benchmarking;
using OServe.Models;
using Xunit;

namespace OServe.Engine.Tests.EndToEnd;

/// <summary>The real engine behind the real server, called with the official OpenAI SDK and raw HTTP.</summary>
public sealed class RealServerTests
{
    private static ChatClient Chat(RealServer server) =>
        new(server.ModelName, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseUrl, "/v1") });

    [Fact]
    public async Task ChatThroughTheSdkStreamsTheSameTokensAsItAnswersWhole()
    {
        await using var server = await RealServer.StartAsync();
        var client = Chat(server);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0 };
        ChatCompletion whole = await client.CompleteChatAsync([new UserChatMessage("Tell me a story")], options);
        var streamed = new System.Text.StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Tell me a story")], options))
            foreach (var part in update.ContentUpdate)
                streamed.Append(part.Text);
        Assert.Equal(ChatFinishReason.Length, whole.FinishReason);
        Assert.Equal(12, whole.Usage.OutputTokenCount);
        Assert.False(string.IsNullOrEmpty(whole.Content[0].Text));
        Assert.Equal(whole.Content[0].Text, streamed.ToString());
        Assert.Equal(0, server.Snapshot().NumRequestsRunning);
    }

    [Fact]
    public async Task ManyConcurrentRequestsAllFinishWithTheirTokenCounts()
    {
        await using var server = await RealServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        var tasks = Enumerable.Range(0, 24).Select(async i =>
        {
            using var response = await http.PostAsJsonAsync("/v1/completions",
                new { model = server.ModelName, prompt = $"request {i}", max_tokens = 5 + i % 7, ignore_eos = true, temperature = 0.7, seed = i });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return (Asked: 5 + i % 7, Got: body.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        });
        foreach (var (asked, got) in await Task.WhenAll(tasks))
            Assert.Equal(asked, got);
        var snapshot = server.Snapshot();
        Assert.Equal(0, snapshot.NumRequestsRunning + snapshot.NumRequestsWaiting);
        Assert.Equal(0, snapshot.KvCacheUsage);
    }

    [Fact]
    public async Task APromptBeyondTheContextIsA400NamingTheField()
    {
        await using var server = await RealServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        var prompt = Enumerable.Repeat(42, 600).ToArray();
        using var response = await http.PostAsJsonAsync("/v1/completions", new { model = server.ModelName, prompt, max_tokens = 4 });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("invalid_request_error", body.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("512", body.RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task TokenizeCountsWithTheServedTokenizer()
    {
        await using var server = await RealServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        using var response = await http.PostAsJsonAsync("/tokenize", new { prompt = "Hello world" });
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(3, body.RootElement.GetProperty("count").GetInt32()); // BOS + "Hello" + " world" in GPT-2
        Assert.Equal(512, body.RootElement.GetProperty("max_model_len").GetInt32());
        using var missing = await http.PostAsJsonAsync("/tokenize", new { text = "x" });
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
    }

    [Fact]
    public async Task BenchAgainstTheRealServerAddsUp()
    {
        await using var server = await RealServer.StartAsync();
        var result = await BenchRunner.RunAsync(new BenchOptions
        {
            BaseUrl = server.BaseUrl,
            Model = server.ModelName,
            NumPrompts = 20,
            RandomInputLen = 24,
            RandomOutputLen = 6,
            RequestRate = 50,
            Seed = 3,
        });
        Assert.Equal(20, result.Completed);
        Assert.Equal(0, result.Failed);
        Assert.Equal(0, result.NumPromptLenMismatches);
        Assert.StartsWith("server:", result.TokenizerId);
        Assert.Equal(20L * 24, result.TotalInputTokens);
        Assert.Equal(20L * 6, result.TotalOutputTokens);
        Assert.All(result.Outcomes, o => Assert.True(o.Success));
    }

    [SkippableFact]
    public async Task Stories260KContinuesTheDocumentedStoryGreedily()
    {
        var checkpoint = SharedData.Path("models", "stories260K", "stories260K.bin");
        Skip.If(checkpoint is null, "shared/models/stories260K not found next to the repository");
        var model = ModelLoader.Load(checkpoint, TorchSharp.torch.CPU, TorchSharp.torch.ScalarType.Float32);
        await using var server = await RealServer.StartAsync(model, new OServe.Engine.Execution.EngineSettings { MaxNumSeqs = 4, KvCacheGib = 0.01 });
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        using var response = await http.PostAsJsonAsync("/v1/completions",
            new { model = server.ModelName, prompt = "Once upon a time", max_tokens = 40, temperature = 0 });
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var text = body.RootElement.GetProperty("choices")[0].GetProperty("text").GetString();
        // stories260K.md: "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ..."
        Assert.StartsWith(", there was a little girl named Lily. She loved to play outside in the park.", text);
    }
}
