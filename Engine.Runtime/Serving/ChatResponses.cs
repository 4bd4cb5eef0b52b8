using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>/v1/chat/completions answers: whole (n choices) or streamed, with logprobs when asked.</summary>
public static class ChatResponses
{
    public static async Task<IResult> CollectAsync(ParsedRequest request, IReadOnlyList<ActiveGeneration> generations, LogprobFormatter formatter)
    {
        var (all, chosen) = await ChoiceStreams.CollectBestAsync(generations, request.N);
        var choices = chosen.Select((c, i) => new ChatChoice(i, new ChatMessageBody("assistant", c.Text), OpenAIFinishReason.From(c.Last.FinishReason),
            request.Logprobs is null ? null : new ChatLogprobs([.. c.Tokens.Where(t => t.Logprob is not null).Select(t => formatter.Chat(t.Logprob!, request.TokensAsIds))])));
        var first = generations[0];
        return TypedResults.Ok(new ChatCompletionResponse(first.Id, first.Created, request.Model, [.. choices],
            ChoiceStreams.Usage(request, all.Select(c => c.Last.NumOutputTokens))));
    }

    public static async IAsyncEnumerable<object> StreamAsync(ParsedRequest request, IReadOnlyList<ActiveGeneration> generations, LogprobFormatter formatter)
    {
        var first = generations[0];
        var (id, created, model) = (first.Id, first.Created, request.Model);
        // OpenAI opens every chat stream with the role, content empty, per choice.
        for (int i = 0; i < generations.Count; i++)
            yield return new ChatCompletionChunk(id, created, model, [new ChatChunkChoice(i, new ChatDelta("assistant", ""), null)]);
        var numOutput = new int[generations.Count];
        await foreach (var (index, step) in ChoiceStreams.InterleaveAsync(generations))
        {
            numOutput[index] = step.NumOutputTokens;
            var logprobs = request.Logprobs is not null && step.TokenId >= 0 && step.Logprob is { } lp ? new ChatLogprobs([formatter.Chat(lp, request.TokensAsIds)]) : null;
            if (step.TextDelta.Length > 0 || step.IsFinished || logprobs is not null)
                yield return new ChatCompletionChunk(id, created, model,
                    [new ChatChunkChoice(index, new ChatDelta(null, step.TextDelta.Length > 0 ? step.TextDelta : null),
                        step.IsFinished ? OpenAIFinishReason.From(step.FinishReason) : null, logprobs)]);
        }
        if (request.IncludeUsage)
            yield return new ChatCompletionChunk(id, created, model, []) { Usage = ChoiceStreams.Usage(request, numOutput) };
    }
}
