using System.Text;
using System.Threading.Channels;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>One sequence read to its end: its text, its tokens with their logprobs, how it finished.</summary>
public sealed record CollectedChoice(
    string Text,
    GenerationEvent Last,
    IReadOnlyList<(int TokenId, TokenLogprob? Logprob)> Tokens,
    IReadOnlyList<TokenLogprob?>? PromptLogprobs)
{
    /// <summary>Sum of the generated tokens' logprobs: how best_of ranks sequences.</summary>
    public double CumulativeLogprob => Tokens.Sum(t => (double)(t.Logprob?.Logprob ?? 0));
}

/// <summary>Reading the sequences of one request: all to the end, or interleaved as they come for a stream.</summary>
public static class ChoiceStreams
{
    public static async Task<CollectedChoice> CollectAsync(ActiveGeneration generation)
    {
        var text = new StringBuilder();
        var tokens = new List<(int, TokenLogprob?)>();
        IReadOnlyList<TokenLogprob?>? prompt = null;
        GenerationEvent? last = null;
        await foreach (var step in generation.ReadAllAsync())
        {
            text.Append(step.TextDelta);
            prompt ??= step.PromptLogprobs;
            if (step.TokenId >= 0)
                tokens.Add((step.TokenId, step.Logprob));
            last = step;
        }
        return new CollectedChoice(text.ToString(), last!, tokens, prompt);
    }

    /// <summary>
    /// Every sequence's result; with best_of above n, the n with the highest cumulative logprob
    /// (stable on ties), as OpenAI and vLLM choose them.
    /// </summary>
    public static async Task<(IReadOnlyList<CollectedChoice> All, IReadOnlyList<CollectedChoice> Chosen)> CollectBestAsync(
        IReadOnlyList<ActiveGeneration> generations, int n)
    {
        var all = await Task.WhenAll(generations.Select(CollectAsync));
        return (all, all.Length <= n ? all : [.. all.OrderByDescending(c => c.CumulativeLogprob).Take(n)]);
    }

    /// <summary>Events of all sequences as they come, each with its choice index; each sequence's own order is kept.</summary>
    public static async IAsyncEnumerable<(int Index, GenerationEvent Step)> InterleaveAsync(IReadOnlyList<ActiveGeneration> generations)
    {
        if (generations.Count == 1)
        {
            await foreach (var step in generations[0].ReadAllAsync())
                yield return (0, step);
            yield break;
        }
        var channel = Channel.CreateUnbounded<(int, GenerationEvent)>(new UnboundedChannelOptions { SingleReader = true });
        async Task PumpAsync(int index)
        {
            await foreach (var step in generations[index].ReadAllAsync())
                await channel.Writer.WriteAsync((index, step));
        }
        // Every pump ends (finished, failed, or cancelled with the request) before the channel completes,
        // so no sequence is disposed while it is still being read.
        var pumps = Enumerable.Range(0, generations.Count).Select(i => Task.Run(() => PumpAsync(i))).ToArray();
        _ = Task.WhenAll(pumps).ContinueWith(
            all => channel.Writer.TryComplete(all.Exception?.InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) ?? all.Exception?.InnerException),
            TaskScheduler.Default);
        await foreach (var item in channel.Reader.ReadAllAsync())
            yield return item;
    }

    /// <summary>Usage over the request: its prompt once, every sequence's output (best_of ones too, as OpenAI bills them).</summary>
    public static UsageInfo Usage(ParsedRequest request, IEnumerable<int> numOutputTokens) =>
        new(request.PromptTokens.Count, request.IsPromptOnly ? 0 : numOutputTokens.Sum());
}
