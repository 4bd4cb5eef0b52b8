using System.Text.Json.Serialization;

namespace OServe.Engine.Serving;

// Response shapes of the OpenAI API subset we serve, serialized with ServingJson (snake_case).
// Fields that OpenAI writes as null (finish_reason mid-stream, logprobs) stay in the output;
// fields that only some messages carry are omitted when null.

public sealed record UsageInfo(int PromptTokens, int CompletionTokens)
{
    public int TotalTokens => PromptTokens + CompletionTokens;
}

public sealed record CompletionChoice(int Index, string Text, string? FinishReason, CompletionLogprobs? Logprobs = null);

/// <summary>The legacy completions logprobs: parallel lists, one entry per token (null for a prompt's first token).</summary>
public sealed record CompletionLogprobs(
    IReadOnlyList<string> Tokens,
    IReadOnlyList<float?> TokenLogprobs,
    IReadOnlyList<IReadOnlyDictionary<string, float>?> TopLogprobs,
    IReadOnlyList<int> TextOffset);

/// <summary>/v1/completions, both the whole response and (object "text_completion" too) each stream chunk.</summary>
public sealed record CompletionResponse(string Id, long Created, string Model, IReadOnlyList<CompletionChoice> Choices)
{
    public string Object => "text_completion";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public UsageInfo? Usage { get; init; }
}

public sealed record ChatMessageBody(string Role, string Content);

public sealed record ChatChoice(int Index, ChatMessageBody Message, string FinishReason, ChatLogprobs? Logprobs = null);

/// <summary>Chat logprobs: one entry per generated token.</summary>
public sealed record ChatLogprobs(IReadOnlyList<ChatTokenLogprob> Content);

public sealed record ChatTokenLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprob> TopLogprobs);

public sealed record ChatTopLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes);

public sealed record ChatCompletionResponse(string Id, long Created, string Model, IReadOnlyList<ChatChoice> Choices, UsageInfo Usage)
{
    public string Object => "chat.completion";
}

public sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content);

public sealed record ChatChunkChoice(int Index, ChatDelta Delta, string? FinishReason, ChatLogprobs? Logprobs = null);

public sealed record ChatCompletionChunk(string Id, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices)
{
    public string Object => "chat.completion.chunk";

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public UsageInfo? Usage { get; init; }
}

public sealed record ModelCard(string Id, long Created, int MaxModelLen)
{
    public string Object => "model";
    public string OwnedBy => "oserve";
}

public sealed record ModelList(IReadOnlyList<ModelCard> Data)
{
    public string Object => "list";
}

public sealed record HealthStatus(string Status, string Model);
