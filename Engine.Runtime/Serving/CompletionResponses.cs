using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>/v1/completions answers: whole (n choices, the best_of best) or streamed, with echo and logprobs.</summary>
public static class CompletionResponses
{
    public static async Task<IResult> CollectAsync(ParsedRequest request, IReadOnlyList<ActiveGeneration> generations, LogprobFormatter formatter)
    {
        var (all, chosen) = await ChoiceStreams.CollectBestAsync(generations, request.N);
        var choices = chosen.Select((c, i) =>
        {
            var text = request.IsPromptOnly ? "" : c.Text;
            CompletionLogprobs? logprobs = null;
            if (request.Logprobs is { } top)
            {
                var builder = formatter.Completion(0, top, request.TokensAsIds);
                AddPrompt(builder, request, c.PromptLogprobs);
                if (!request.IsPromptOnly)
                    foreach (var (id, logprob) in c.Tokens)
                        builder.Add(id, logprob);
                logprobs = builder.Build();
            }
            return new CompletionChoice(i, (request.EchoText ?? "") + text, OpenAIFinishReason.From(c.Last.FinishReason), logprobs);
        });
        var first = generations[0];
        return TypedResults.Ok(new CompletionResponse(first.Id, first.Created, request.Model, [.. choices])
        {
            Usage = ChoiceStreams.Usage(request, all.Select(c => c.Last.NumOutputTokens)),
        });
    }

    public static async IAsyncEnumerable<object> StreamAsync(ParsedRequest request, IReadOnlyList<ActiveGeneration> generations, LogprobFormatter formatter)
    {
        var first = generations[0];
        var (id, created, model) = (first.Id, first.Created, request.Model);
        var builders = generations.Select(_ => request.Logprobs is { } top ? formatter.Completion(0, top, request.TokensAsIds) : null).ToArray();
        var started = new bool[generations.Count];
        var numOutput = new int[generations.Count];
        await foreach (var (index, step) in ChoiceStreams.InterleaveAsync(generations))
        {
            var builder = builders[index];
            int from = builder?.Count ?? 0;
            var text = request.IsPromptOnly ? "" : step.TextDelta;
            if (!started[index])
            {
                // The echo goes first, with its logprobs, in the choice's first chunk.
                started[index] = true;
                text = (request.EchoText ?? "") + text;
                if (builder is not null)
                    AddPrompt(builder, request, step.PromptLogprobs);
            }
            bool hasToken = step.TokenId >= 0 && !request.IsPromptOnly;
            if (builder is not null && hasToken)
                builder.Add(step.TokenId, step.Logprob);
            numOutput[index] = step.NumOutputTokens;
            bool hasLogprobs = builder is not null && builder.Count > from;
            // A token that completes no character yet (part of a UTF-8 sequence) has no text to send, unless its logprob was asked for.
            if (text.Length > 0 || step.IsFinished || hasLogprobs)
                yield return new CompletionResponse(id, created, model,
                    [new CompletionChoice(index, text, step.IsFinished ? OpenAIFinishReason.From(step.FinishReason) : null, hasLogprobs ? builder!.Build(from) : null)]);
        }
        if (request.IncludeUsage)
            yield return new CompletionResponse(id, created, model, []) { Usage = ChoiceStreams.Usage(request, numOutput) };
    }

    /// <summary>With echo, the prompt's tokens lead the logprobs (the first has none).</summary>
    private static void AddPrompt(LogprobFormatter.CompletionLogprobsBuilder builder, ParsedRequest request, IReadOnlyList<TokenLogprob?>? promptLogprobs)
    {
        if (request.EchoText is null)
            return;
        for (int i = 0; i < request.PromptTokens.Count; i++)
            builder.Add(request.PromptTokens[i], promptLogprobs is { } p && i < p.Count ? p[i] : null);
    }
}
