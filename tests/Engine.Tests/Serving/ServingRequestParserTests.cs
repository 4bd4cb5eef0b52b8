using System.Text.Json;
using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

/// <summary>How request fields map onto SamplingParams and prompt tokens (no server needed).</summary>
public sealed class ServingRequestParserTests
{
    private static readonly FakeEngine Engine = new() { MaxModelLength = 64 };

    private static RequestParser Parser(int defaultMaxTokens = 16) =>
        new(Engine, ["fake-model"], new PlainChatTemplate(), defaultMaxTokens, ServingLimits.For(new ServeOptions(), Engine));

    private static ParsedRequest Completion(string fields, int defaultMaxTokens = 16) =>
        Parser(defaultMaxTokens).ParseCompletion(JsonDocument.Parse($$"""{"model":"fake-model",{{fields}}}""").RootElement);

    private static ParsedRequest Chat(string fields) =>
        Parser().ParseChat(JsonDocument.Parse($$"""{"model":"fake-model",{{fields}}}""").RootElement);

    [Fact]
    public void Every_sampling_field_reaches_sampling_params()
    {
        var parsed = Completion("""
            "prompt":"Hi","max_tokens":7,"temperature":0,"top_p":0.5,"top_k":40,"seed":42,
            "stop":["\n\n","END"],"stop_token_ids":[2,3],"ignore_eos":true,"n":1,"echo":false,"user":"u1"
            """);

        var s = parsed.Sampling;
        Assert.Equal(7, s.MaxTokens);
        Assert.Equal(0f, s.Temperature);
        Assert.True(s.IsGreedy);
        Assert.Equal(0.5f, s.TopP);
        Assert.Equal(40, s.TopK);
        Assert.Equal(42UL, s.Seed);
        Assert.Equal(["\n\n", "END"], s.Stop);
        Assert.Equal([2, 3], s.StopTokenIds);
        Assert.True(s.IgnoreEos);
        Assert.False(parsed.Stream);
    }

    [Fact]
    public void Absent_and_null_fields_take_the_defaults()
    {
        var parsed = Completion("""
            "prompt":"Hi","temperature":null,"top_p":null,"stop":null,"seed":null,"stream":null,"max_tokens":null
            """);

        Assert.Equal(16, parsed.Sampling.MaxTokens);
        Assert.Equal(1f, parsed.Sampling.Temperature);
        Assert.Equal(1f, parsed.Sampling.TopP);
        Assert.Equal(-1, parsed.Sampling.TopK);
        Assert.Null(parsed.Sampling.Seed);
        Assert.Empty(parsed.Sampling.Stop);
        Assert.False(parsed.Sampling.IgnoreEos);
    }

    [Fact]
    public void Single_stop_string_top_k_zero_and_negative_seed_are_normalised()
    {
        var s = Completion("""  "prompt":"Hi","stop":"END","top_k":0,"seed":-1  """).Sampling;

        Assert.Equal(["END"], s.Stop);
        Assert.Equal(-1, s.TopK);
        Assert.Equal(ulong.MaxValue, s.Seed);
    }

    [Fact]
    public void Default_completion_max_tokens_shrinks_to_the_room_left_in_the_context()
    {
        var prompt = new string('x', 55); // 56 tokens with BOS, 8 left of 64

        Assert.Equal(8, Completion($$""" "prompt":"{{prompt}}" """).Sampling.MaxTokens);
        Assert.Equal(5, Completion(""" "prompt":"Hi" """, defaultMaxTokens: 5).Sampling.MaxTokens);
    }

    [Fact]
    public void Chat_defaults_max_tokens_to_the_rest_of_the_context_and_prefers_max_completion_tokens()
    {
        const string Messages = """ "messages":[{"role":"user","content":"Hi"}] """;
        var promptTokens = Engine.Encode("User: Hi\n\nAssistant:", addBos: true).Count;

        Assert.Equal(64 - promptTokens, Chat(Messages).Sampling.MaxTokens);
        Assert.Equal(5, Chat(Messages + """ ,"max_tokens":9,"max_completion_tokens":5 """).Sampling.MaxTokens);
        Assert.Equal(9, Chat(Messages + """ ,"max_tokens":9 """).Sampling.MaxTokens);
    }

    [Fact]
    public void Chat_renders_messages_through_the_template_and_joins_text_parts()
    {
        var engine = new FakeEngine { MaxModelLength = 256 };
        var parser = new RequestParser(engine, ["fake-model"], new PlainChatTemplate(), 16, ServingLimits.For(new ServeOptions(), engine));

        var parsed = parser.ParseChat(JsonDocument.Parse("""
            {"model":"fake-model","messages":[
              {"role":"system","content":"Be brief."},
              {"role":"user","content":[{"type":"text","text":"Hel"},{"type":"text","text":"lo"}]},
              {"role":"assistant","content":"Hi."},
              {"role":"developer","content":"No emoji."},
              {"role":"user","content":"Story?","name":"ignored"}]}
            """).RootElement);

        var expected = "System: Be brief.\n\nUser: Hello\n\nAssistant: Hi.\n\nSystem: No emoji.\n\nUser: Story?\n\nAssistant:";
        Assert.Equal(engine.Encode(expected, addBos: true), parsed.PromptTokens);
    }

    [Fact]
    public void Stream_options_include_usage_is_read_only_with_stream()
    {
        Assert.True(Completion(""" "prompt":"Hi","stream":true,"stream_options":{"include_usage":true} """).IncludeUsage);
        Assert.False(Completion(""" "prompt":"Hi","stream":true,"stream_options":{} """).IncludeUsage);
        Assert.False(Completion(""" "prompt":"Hi","stream":true """).IncludeUsage);
    }

    [Fact]
    public void A_prompt_filling_the_whole_context_is_refused_on_the_prompt()
    {
        var prompt = new string('x', 63); // 64 tokens with BOS: no room to generate

        var error = Assert.Throws<OpenAIErrorException>(() => Completion($$""" "prompt":"{{prompt}}" """));

        Assert.Equal(400, error.StatusCode);
        Assert.Equal("prompt", error.Param);
        Assert.Equal("prompt: is 64 tokens, which leaves no room to generate within the model's maximum context length of 64 tokens", error.Message);
    }

    [Fact]
    public void Token_ids_are_range_checked_only_when_the_engine_knows_its_vocabulary()
    {
        var engine = new FakeEngine { VocabSize = null };
        var parser = new RequestParser(engine, ["fake-model"], new PlainChatTemplate(), 16, ServingLimits.For(new ServeOptions(), engine));

        var parsed = parser.ParseCompletion(JsonDocument.Parse("""{"model":"fake-model","prompt":[1000000],"stop_token_ids":[999999]}""").RootElement);

        Assert.Equal([1_000_000], parsed.PromptTokens);
        Assert.Equal([999_999], parsed.Sampling.StopTokenIds);
        var error = Assert.Throws<OpenAIErrorException>(() =>
            parser.ParseCompletion(JsonDocument.Parse("""{"model":"fake-model","prompt":[-1]}""").RootElement));
        Assert.Equal("prompt[0]: must be a token id (a non-negative integer), got -1", error.Message);
    }
}
