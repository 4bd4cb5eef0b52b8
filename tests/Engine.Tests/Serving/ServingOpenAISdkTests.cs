using System.ClientModel;
using System.Text;
using OpenAI;
using OpenAI.Chat;
using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

/// <summary>The official OpenAI .NET SDK talks to the real server (chat; the SDK has no legacy completions client).</summary>
public sealed class ServingOpenAISdkTests
{
    private static ChatClient ChatClientFor(ServingTestServer server, string apiKey = "unused", string model = "fake-model") =>
        new(model, new ApiKeyCredential(apiKey), new OpenAIClientOptions { Endpoint = server.V1, NetworkTimeout = TimeSpan.FromSeconds(10) });

    [Fact]
    public async Task Chat_completion_returns_the_engine_text_finish_reason_and_usage()
    {
        var engine = new FakeEngine();
        await using var server = await ServingTestServer.StartAsync(engine);

        ChatCompletion completion = await ChatClientFor(server).CompleteChatAsync(
            [new SystemChatMessage("Be brief."), new UserChatMessage("Tell a story")],
            new ChatCompletionOptions { MaxOutputTokenCount = 4, Temperature = 0.5f, TopP = 0.9f, StopSequences = { "END" } });

        Assert.Equal("Once upon a time", completion.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal("fake-model", completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id);
        var expectedPrompt = engine.Encode("System: Be brief.\n\nUser: Tell a story\n\nAssistant:", addBos: true);
        Assert.Equal(expectedPrompt.Count, completion.Usage.InputTokenCount);
        Assert.Equal(4, completion.Usage.OutputTokenCount);
        Assert.Equal(expectedPrompt.Count + 4, completion.Usage.TotalTokenCount);

        var sent = engine.LastRequest!;
        Assert.Equal(expectedPrompt, sent.PromptTokens);
        Assert.Equal(4, sent.Sampling.MaxTokens);
        Assert.Equal(0.5f, sent.Sampling.Temperature);
        Assert.Equal(0.9f, sent.Sampling.TopP);
        Assert.Equal(["END"], sent.Sampling.Stop);
    }

    [Fact]
    public async Task Chat_completion_that_runs_out_of_script_finishes_with_stop()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        ChatCompletion completion = await ChatClientFor(server).CompleteChatAsync([new UserChatMessage("Hi")]);

        Assert.Equal(string.Concat(FakeEngine.DefaultScript), completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
    }

    [Fact]
    public async Task Streaming_chat_delivers_every_delta_then_finish_reason_and_usage()
    {
        var engine = new FakeEngine();
        await using var server = await ServingTestServer.StartAsync(engine);

        var text = new StringBuilder();
        var numContentUpdates = 0;
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in ChatClientFor(server).CompleteChatStreamingAsync(
            [new UserChatMessage("Hi")], new ChatCompletionOptions { MaxOutputTokenCount = 3 }))
        {
            // The opening chunk carries the role with empty content, as OpenAI's does.
            foreach (var part in update.ContentUpdate.Where(p => p.Text.Length > 0))
            {
                text.Append(part.Text);
                numContentUpdates++;
            }
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal("Once upon a", text.ToString());
        Assert.Equal(3, numContentUpdates);
        Assert.Equal(ChatFinishReason.Length, finish);
        // The SDK asks for stream_options.include_usage, so the usage chunk must arrive.
        Assert.NotNull(usage);
        Assert.Equal(3, usage.OutputTokenCount);
        Assert.Equal(engine.LastRequest!.PromptTokens.Count, usage.InputTokenCount);
    }

    [Fact]
    public async Task Sdk_with_the_configured_api_key_is_served_and_with_a_wrong_one_gets_401()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine(), new ServeOptions { ApiKey = "s3cret" });

        ChatCompletion ok = await ChatClientFor(server, apiKey: "s3cret").CompleteChatAsync([new UserChatMessage("Hi")]);
        Assert.NotEmpty(ok.Content[0].Text);

        var error = await Assert.ThrowsAsync<ClientResultException>(
            () => ChatClientFor(server, apiKey: "guess").CompleteChatAsync([new UserChatMessage("Hi")]));
        Assert.Equal(401, error.Status);
    }

    [Fact]
    public async Task Sdk_sees_404_for_a_model_that_is_not_served()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine());

        var error = await Assert.ThrowsAsync<ClientResultException>(
            () => ChatClientFor(server, model: "gpt-4o").CompleteChatAsync([new UserChatMessage("Hi")]));

        Assert.Equal(404, error.Status);
        Assert.Contains("gpt-4o", error.Message);
    }
}
