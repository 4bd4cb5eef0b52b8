using System.Text.Json;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>A request that passed validation: what the engine runs and how the answer is shaped.</summary>
public sealed record ParsedRequest(string Model, IReadOnlyList<int> PromptTokens, SamplingParams Sampling, bool Stream, bool IncludeUsage)
{
    /// <summary>Choices returned (OpenAI's n).</summary>
    public int N { get; init; } = 1;

    /// <summary>Sequences generated, of which the <see cref="N"/> with the highest cumulative logprob are returned (best_of).</summary>
    public int BestOf { get; init; } = 1;

    /// <summary>Completions echo: the prompt text, put before each choice's text (null: no echo).</summary>
    public string? EchoText { get; init; }

    /// <summary>echo with max_tokens 0: the prompt alone is the answer; the one token generated for it is dropped.</summary>
    public bool IsPromptOnly { get; init; }

    /// <summary>Logprobs the client asked for: the number of alternatives (chat: top_logprobs, 0 when only logprobs: true); null: none.</summary>
    public int? Logprobs { get; init; }

    /// <summary>vLLM's return_tokens_as_token_ids: logprobs name tokens "token_id:ID" (exact where text is ambiguous).</summary>
    public bool TokensAsIds { get; init; }
}

/// <summary>
/// Turns OpenAI request bodies into <see cref="ParsedRequest"/>s, refusing with a 400 that names the
/// field. Cheap checks run first; the prompt is checked against the byte limit, then tokenized
/// (cancellable: the client may leave), then checked against the context length. Options we do not
/// implement are refused unless they hold their do-nothing value, never silently ignored.
/// </summary>
public sealed class RequestParser(IInferenceEngine engine, IReadOnlyList<string> servedModelNames, IChatTemplate chatTemplate,
    int defaultCompletionMaxTokens, ServingLimits limits)
{
    /// <summary>Most choices (n, best_of) one request may ask for.</summary>
    public const int MaxChoices = 16;

    private static readonly string[] ChatRoles = ["system", "developer", "user", "assistant"];

    public ParsedRequest ParseCompletion(JsonElement body, CancellationToken cancellationToken = default)
    {
        var fields = new RequestFields(body);
        var model = ResolveModel(fields);
        var echo = fields.Bool("echo") ?? false;
        fields.RejectUnlessDefault("suffix", v => v.ValueKind == JsonValueKind.String && v.GetString() == "", "suffix is not supported");
        // The legacy API takes an integer; false is what some clients send for "none".
        int? logprobs = fields.TryGet("logprobs", out var l) && l.ValueKind == JsonValueKind.False ? null
            : (int?)fields.Integer("logprobs", 0, AsyncEngine.MaxLogprobs, $"must be an integer in 0..{AsyncEngine.MaxLogprobs}");
        var (stream, includeUsage) = StreamFlags(fields);
        var (n, bestOf) = Choices(fields, stream);
        var sampling = Sampling(fields);
        var maxTokens = (int?)fields.Integer("max_tokens", echo ? 0 : 1, int.MaxValue, echo ? "must be a non-negative integer" : "must be a positive integer");
        var (prompt, promptText) = CompletionPrompt(fields, cancellationToken);
        var limit = Math.Min(defaultCompletionMaxTokens, engine.MaxModelLength - prompt.Count);
        // echo with max_tokens 0 scores the prompt alone: one token is generated, to get the prompt's logprobs, and dropped.
        bool promptOnly = maxTokens == 0;
        sampling = WithMaxTokens(sampling, prompt, "prompt", promptOnly ? 1 : maxTokens, "max_tokens", limit) with
        {
            Logprobs = logprobs ?? (bestOf > n ? 0 : null), // best_of ranks by cumulative logprob
            PromptLogprobs = echo ? logprobs : null,
        };
        return new ParsedRequest(model, prompt, sampling, stream, includeUsage)
        {
            N = n,
            BestOf = bestOf,
            EchoText = echo ? promptText ?? engine.Decode(prompt) : null,
            IsPromptOnly = promptOnly,
            Logprobs = logprobs,
            TokensAsIds = fields.Bool("return_tokens_as_token_ids") ?? false,
        };
    }

    public ParsedRequest ParseChat(JsonElement body, CancellationToken cancellationToken = default)
    {
        var fields = new RequestFields(body);
        var model = ResolveModel(fields);
        var logprobs = fields.Bool("logprobs") ?? false;
        var topLogprobs = (int?)fields.Integer("top_logprobs", 0, AsyncEngine.MaxLogprobs, $"must be an integer in 0..{AsyncEngine.MaxLogprobs}");
        if (topLogprobs > 0 && !logprobs)
            throw OpenAIErrorException.BadField("top_logprobs", "needs logprobs: true");
        foreach (var name in new[] { "tools", "functions" })
            fields.RejectUnlessDefault(name, v => v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0, "tool calling is not supported");
        fields.RejectUnlessDefault("response_format",
            v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "text",
            "only {\"type\": \"text\"} is supported");
        var (stream, includeUsage) = StreamFlags(fields);
        var (n, _) = Choices(fields, stream, allowBestOf: false);
        var sampling = Sampling(fields);
        // max_completion_tokens replaced max_tokens in OpenAI's chat API; accept either, the new one first.
        var maxName = fields.TryGet("max_completion_tokens", out _) ? "max_completion_tokens" : "max_tokens";
        var maxTokens = fields.PositiveInt(maxName);
        var messages = ChatMessages(fields);
        var tokensAsIds = fields.Bool("return_tokens_as_token_ids") ?? false;
        var text = chatTemplate.Render(messages);
        limits.CheckPrompt(text, "messages");
        var prompt = engine.Encode(text, addBos: true, cancellationToken);
        sampling = WithMaxTokens(sampling, prompt, "messages", maxTokens, maxName, engine.MaxModelLength - prompt.Count);
        int? asked = logprobs ? topLogprobs ?? 0 : null;
        return new ParsedRequest(model, prompt, sampling with { Logprobs = asked }, stream, includeUsage) { N = n, BestOf = n, Logprobs = asked, TokensAsIds = tokensAsIds };
    }

    /// <summary>n, and best_of (completions): best_of sequences are generated and the n best returned.</summary>
    private static (int N, int BestOf) Choices(RequestFields fields, bool stream, bool allowBestOf = true)
    {
        var n = (int)(fields.Integer("n", 1, MaxChoices, $"must be an integer in 1..{MaxChoices}") ?? 1);
        if (!allowBestOf)
            return (n, n);
        var bestOf = (int)(fields.Integer("best_of", 1, MaxChoices, $"must be an integer in 1..{MaxChoices}") ?? n);
        if (bestOf < n)
            throw OpenAIErrorException.BadField("best_of", $"must be at least n ({n}), got {bestOf}");
        if (stream && bestOf > n)
            throw OpenAIErrorException.BadField("best_of", "cannot be above n when streaming: the best choices are known only at the end");
        return (n, bestOf);
    }

    private string ResolveModel(RequestFields fields)
    {
        var model = fields.RequireString("model");
        return servedModelNames.Contains(model, StringComparer.Ordinal) ? model : throw OpenAIErrorException.UnknownModel(model, servedModelNames);
    }

    private static (bool Stream, bool IncludeUsage) StreamFlags(RequestFields fields)
    {
        var stream = fields.Bool("stream") ?? false;
        if (!fields.TryGet("stream_options", out var options))
            return (stream, false);
        if (!stream)
            throw OpenAIErrorException.BadField("stream_options", "is only allowed when stream is true");
        if (options.ValueKind != JsonValueKind.Object)
            throw OpenAIErrorException.BadField("stream_options", $"must be an object, got {RequestFields.Describe(options)}");
        return (stream, Prefixed("stream_options", () => new RequestFields(options).Bool("include_usage")) is true);
    }

    private SamplingParams Sampling(RequestFields fields)
    {
        foreach (var name in new[] { "presence_penalty", "frequency_penalty" })
            fields.Number(name, 0, 0, false, "penalties are not supported; only 0 is accepted");
        fields.RejectUnlessDefault("logit_bias", v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any(), "logit_bias is not supported");
        var topK = fields.Integer("top_k", -1, int.MaxValue, "must be an integer >= -1 (-1 and 0 turn it off)");
        var defaults = new SamplingParams();
        return defaults with
        {
            Temperature = fields.Number("temperature", 0, 2, false, "must be a number between 0 and 2") ?? defaults.Temperature,
            TopP = fields.Number("top_p", 0, 1, true, "must be a number in (0, 1]") ?? defaults.TopP,
            TopK = topK is null or 0 ? defaults.TopK : (int)topK.Value,
            Seed = fields.Integer("seed", long.MinValue, long.MaxValue, "must be an integer") is { } seed ? unchecked((ulong)seed) : null,
            Stop = fields.StringOrList("stop"),
            StopTokenIds = fields.TokenIds("stop_token_ids", engine.VocabSize),
            IgnoreEos = fields.Bool("ignore_eos") ?? false,
        };
    }

    private SamplingParams WithMaxTokens(SamplingParams sampling, IReadOnlyList<int> prompt, string promptName, int? maxTokens, string maxName, int defaultMaxTokens)
    {
        var limit = engine.MaxModelLength;
        if (prompt.Count >= limit)
            throw OpenAIErrorException.BadField(promptName,
                $"is {prompt.Count} tokens, which leaves no room to generate within the model's maximum context length of {limit} tokens");
        if (maxTokens is { } m && prompt.Count + m > limit)
            throw OpenAIErrorException.BadField(maxName,
                $"prompt ({prompt.Count} tokens) + {maxName} ({m}) = {prompt.Count + m} tokens exceeds the model's maximum context length of {limit} tokens; use at most {limit - prompt.Count}");
        return sampling with { MaxTokens = maxTokens ?? defaultMaxTokens };
    }

    /// <summary>A string, a list of token ids, or a one-element list of either; batches are refused. The text too when given as one.</summary>
    private (IReadOnlyList<int> Tokens, string? Text) CompletionPrompt(RequestFields fields, CancellationToken cancellationToken)
    {
        var prompt = fields.Require("prompt");
        if (prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() > 0 && prompt[0].ValueKind != JsonValueKind.Number)
        {
            if (prompt.GetArrayLength() > 1)
                throw OpenAIErrorException.BadField("prompt", $"a list of {prompt.GetArrayLength()} prompts is not supported; send one prompt per request");
            prompt = prompt[0];
        }
        string? text = prompt.ValueKind == JsonValueKind.String ? prompt.GetString()! : null;
        if (text is not null)
            limits.CheckPrompt(text, "prompt");
        var tokens = prompt.ValueKind switch
        {
            JsonValueKind.String => engine.Encode(text!, addBos: true, cancellationToken),
            JsonValueKind.Array => RequestFields.AsTokenIds(prompt, "prompt", engine.VocabSize),
            _ => throw OpenAIErrorException.BadField("prompt", $"must be a string or a list of token ids, got {RequestFields.Describe(prompt)}"),
        };
        return tokens.Count > 0 ? (tokens, text) : throw OpenAIErrorException.BadField("prompt", "must not be empty");
    }

    private static List<ChatMessage> ChatMessages(RequestFields fields)
    {
        var list = fields.Require("messages");
        if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
            throw OpenAIErrorException.BadField("messages", $"must be a non-empty list of messages, got {RequestFields.Describe(list)}");
        var messages = new List<ChatMessage>();
        var i = 0;
        foreach (var item in list.EnumerateArray())
        {
            var name = $"messages[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
                throw OpenAIErrorException.BadField(name, $"must be an object, got {RequestFields.Describe(item)}");
            var message = new RequestFields(item);
            var role = Prefixed(name, () => message.RequireString("role"));
            if (!ChatRoles.Contains(role))
                throw OpenAIErrorException.BadField($"{name}.role", $"must be one of {string.Join(", ", ChatRoles)}, got '{role}' (tool calling is not supported)");
            messages.Add(new ChatMessage(role, MessageText(message, $"{name}.content")));
        }
        return messages;
    }

    /// <summary>Content is a string or a list of {"type":"text","text":...} parts, joined.</summary>
    private static string MessageText(RequestFields message, string name)
    {
        if (!message.TryGet("content", out var content))
            throw OpenAIErrorException.BadField(name, "is required");
        if (content.ValueKind == JsonValueKind.String)
            return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array)
            throw OpenAIErrorException.BadField(name, $"must be a string or a list of text parts, got {RequestFields.Describe(content)}");
        var texts = new List<string>();
        var j = 0;
        foreach (var part in content.EnumerateArray())
        {
            var partName = $"{name}[{j++}]";
            if (part.ValueKind != JsonValueKind.Object)
                throw OpenAIErrorException.BadField(partName, $"must be an object, got {RequestFields.Describe(part)}");
            var fields = new RequestFields(part);
            var type = Prefixed(partName, () => fields.RequireString("type"));
            if (type != "text")
                throw OpenAIErrorException.BadField($"{partName}.type", $"only 'text' parts are supported, got '{type}'");
            texts.Add(Prefixed(partName, () => fields.RequireString("text")));
        }
        return string.Concat(texts);
    }

    /// <summary>Re-raises a nested field's error under its full path (messages[2].role, not role).</summary>
    private static T Prefixed<T>(string prefix, Func<T> read)
    {
        try { return read(); }
        catch (OpenAIErrorException e) when (e.Param is { } param)
        {
            throw OpenAIErrorException.BadField($"{prefix}.{param}", e.Message[(param.Length + 2)..]);
        }
    }
}
