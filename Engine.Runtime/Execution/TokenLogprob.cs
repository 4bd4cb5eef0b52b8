namespace OServe.Engine.Execution;

/// <summary>One of the most likely tokens at a position.</summary>
public readonly record struct TopLogprob(int TokenId, float Logprob);

/// <summary>A token's log-probability at its position, with the <see cref="Top"/> most likely tokens there (best first).</summary>
public sealed record TokenLogprob(int TokenId, float Logprob, IReadOnlyList<TopLogprob> Top);

/// <summary>
/// What a runner reports besides sampled tokens when a step's requests asked for logprobs
/// (<see cref="SamplingParams.Logprobs"/>, <see cref="SamplingParams.PromptLogprobs"/>). Entry k
/// belongs to chunk k of the step. Reused between steps by the engine core.
/// </summary>
public sealed class StepLogprobs
{
    private TokenLogprob?[] _sampled = [];
    private List<(int Position, TokenLogprob Logprob)>?[] _prompt = [];

    /// <summary>The sampled token's logprob of chunk k (null when the chunk sampled nothing or its request asked for none).</summary>
    public Span<TokenLogprob?> Sampled => _sampled;

    /// <summary>Prompt tokens of chunk k's request, by position, whose logprobs this step computed (null: none).</summary>
    public Span<List<(int Position, TokenLogprob Logprob)>?> Prompt => _prompt;

    /// <summary>Clears the entries for a step of <paramref name="numChunks"/> chunks.</summary>
    public void Reset(int numChunks)
    {
        if (_sampled.Length < numChunks)
        {
            _sampled = new TokenLogprob?[numChunks];
            _prompt = new List<(int, TokenLogprob)>?[numChunks];
        }
        Array.Clear(_sampled);
        Array.Clear(_prompt);
    }

    /// <summary>Whether any of the chunks' requests wants logprobs of the step.</summary>
    public static bool AreWanted(Scheduling.SchedulerOutput output)
    {
        foreach (var chunk in output.Chunks)
        {
            var sampling = chunk.Sequence.Sampling;
            if ((sampling.Logprobs is not null && chunk.SamplesToken) || WantsPromptRows(chunk))
                return true;
        }
        return false;
    }

    /// <summary>A chunk that covers prompt positions of a request that asked for prompt logprobs returns a logits row per token.</summary>
    public static bool WantsPromptRows(Scheduling.ScheduledChunk chunk) =>
        chunk.Sequence.Sampling.PromptLogprobs is not null && chunk.StartPosition < chunk.Sequence.NumPromptTokens - 1;
}
