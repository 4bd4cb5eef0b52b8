using System.ClientModel;
using System.Net.Http.Json;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using OServe.Engine.Execution;
using OServe.Models;
using Xunit;

namespace OServe.Engine.Tests.EndToEnd;

/// <summary>Logprobs from the real engine: the decode path and the prompt (echo) path agree, and the SDK reads them.</summary>
public sealed class RealServerLogprobsTests
{
    [Fact]
    public async Task Echoed_prompt_logprobs_equal_the_logprobs_the_same_tokens_had_when_generated()
    {
        await using var server = await RealServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        var prompt = await PostAsync(http, "/tokenize", new { prompt = "Once upon a time" });
        var promptIds = prompt.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToList();

        // Greedy: each generated token is the most likely one, with its logprob.
        var generated = await PostAsync(http, "/v1/completions", new
        {
            model = server.ModelName, prompt = promptIds, max_tokens = 6, temperature = 0, logprobs = 1, ignore_eos = true, return_tokens_as_token_ids = true,
        });
        var logprobs = generated.GetProperty("choices")[0].GetProperty("logprobs");
        var generatedLogprobs = logprobs.GetProperty("token_logprobs").EnumerateArray().Select(l => l.GetDouble()).ToList();
        var generatedIds = logprobs.GetProperty("tokens").EnumerateArray().Select(t => int.Parse(t.GetString()!["token_id:".Length..])).ToList();
        Assert.Equal(6, generatedIds.Count);

        // The same tokens as a prompt, scored by echo: computed in one prefill instead of one decode step each.
        var scored = await PostAsync(http, "/v1/completions",
            new { model = server.ModelName, prompt = promptIds.Concat(generatedIds).ToArray(), max_tokens = 0, echo = true, logprobs = 0 });
        var echoed = scored.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().ToList();
        Assert.Equal(promptIds.Count + generatedIds.Count, echoed.Count);
        Assert.Equal(JsonValueKind.Null, echoed[0].ValueKind);
        for (int i = 0; i < generatedIds.Count; i++)
            Assert.Equal(generatedLogprobs[i], echoed[promptIds.Count + i].GetDouble(), 3);
        Assert.Equal(0, scored.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task The_openai_sdk_reads_chat_logprobs_and_the_chosen_token_is_the_top_one_when_greedy()
    {
        await using var server = await RealServer.StartAsync();
        var client = new ChatClient(server.ModelName, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseUrl, "/v1") });
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 5, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };

        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("Tell me a story")], options);

        Assert.Equal(5, completion.ContentTokenLogProbabilities.Count);
        foreach (var token in completion.ContentTokenLogProbabilities)
        {
            Assert.Equal(3, token.TopLogProbabilities.Count);
            Assert.Equal(token.TopLogProbabilities[0].LogProbability, token.LogProbability, 4);
            Assert.True(token.LogProbability <= 0);
        }
    }

    [Fact]
    public async Task Best_of_generates_every_sequence_and_answers_n()
    {
        await using var server = await RealServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseUrl };

        var body = await PostAsync(http, "/v1/completions",
            new { model = server.ModelName, prompt = "Once", max_tokens = 4, n = 2, best_of = 4, seed = 3, ignore_eos = true });

        Assert.Equal(2, body.GetProperty("choices").GetArrayLength());
        Assert.Equal(16, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(JsonValueKind.Null, body.GetProperty("choices")[0].GetProperty("logprobs").ValueKind);
        Assert.Equal(0, server.Snapshot().NumRequestsRunning);
    }

    [SkippableFact]
    public async Task A_llama2c_model_stops_on_BOS_as_run_c_does()
    {
        var path = SharedData.Path("models", "stories260K");
        Skip.If(path is null, "../shared/models/stories260K is absent next to the repository; this test needs the stories260K model");
        var model = ModelLoader.Load(path!, TorchSharp.torch.CPU, TorchSharp.torch.ScalarType.Float32);
        await using var server = await RealServer.StartAsync(model, new EngineSettings { MaxNumSeqs = 4, KvCacheGib = 0.05 });
        using var http = new HttpClient { BaseAddress = server.BaseUrl };

        // From BOS alone, greedy, with room for the whole context: run.c ends the story at the next BOS.
        var body = await PostAsync(http, "/v1/completions", new { model = server.ModelName, prompt = new[] { 1 }, max_tokens = 511, temperature = 0 });

        var choice = body.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.StartsWith("Once upon a time", choice.GetProperty("text").GetString());
        Assert.True(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32() < 511);
    }

    private static async Task<JsonElement> PostAsync(HttpClient http, string path, object body)
    {
        using var response = await http.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
