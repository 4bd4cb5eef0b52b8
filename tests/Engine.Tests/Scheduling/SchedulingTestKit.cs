using OServe.Engine.Execution;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Tests.Scheduling;

/// <summary>Small builders for scheduler tests: no tensors, tokens from a deterministic function.</summary>
internal static class SchedulingTestKit
{
    public static SchedulerConfig Config(int numBlocks = 64, int blockSize = 4, int budget = 32, int maxSeqs = 8, int maxModelLen = 128) =>
        new() { NumKvBlocks = numBlocks, BlockSize = blockSize, MaxNumBatchedTokens = budget, MaxNumSeqs = maxSeqs, MaxModelLen = maxModelLen };

    public static Sequence Seq(string id, int promptLength, int maxTokens, bool ignoreEos = true, IReadOnlyList<int>? stopTokenIds = null) =>
        new(id, Prompt(id, promptLength), new SamplingParams { MaxTokens = maxTokens, IgnoreEos = ignoreEos, StopTokenIds = stopTokenIds ?? [] });

    public static int[] Prompt(string id, int length)
    {
        var tokens = new int[length];
        int h = id.GetHashCode(StringComparison.Ordinal) & 0x7fff;
        for (int i = 0; i < length; i++)
            tokens[i] = 10 + (h + i * 7) % 500;
        return tokens;
    }

    /// <summary>
    /// A deterministic "model": the next token is a hash of the whole prefix, so any scheduling
    /// mistake (skipped or repeated positions after a preemption) would change the output.
    /// </summary>
    public static int NextToken(Sequence seq)
    {
        uint h = 2166136261;
        for (int i = 0; i < seq.NumTokens; i++)
            h = (h ^ (uint)seq.TokenAt(i)) * 16777619;
        return 10 + (int)(h % 500);
    }

    /// <summary>Schedules one step, "runs" it with <paramref name="next"/>, applies it; returns the output.</summary>
    public static SchedulerOutput Step(Scheduler scheduler, Func<Sequence, int>? next = null)
    {
        next ??= NextToken;
        var output = scheduler.Schedule();
        var sampled = new int[output.NumChunks];
        for (int k = 0; k < sampled.Length; k++)
        {
            var chunk = output.Chunks[k];
            sampled[k] = chunk.SamplesToken ? next(chunk.Sequence) : -1;
        }
        scheduler.Update(output, sampled);
        return output;
    }

    /// <summary>Steps until nothing is left; returns the number of steps.</summary>
    public static int RunToCompletion(Scheduler scheduler, int maxSteps = 10_000, Func<Sequence, int>? next = null)
    {
        int steps = 0;
        while (scheduler.HasUnfinishedSequences)
        {
            Step(scheduler, next);
            if (++steps > maxSteps)
                throw new InvalidOperationException($"no completion after {maxSteps} steps");
        }
        return steps;
    }
}
