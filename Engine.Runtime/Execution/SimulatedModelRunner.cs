using OServe.Engine.Scheduling;

namespace OServe.Engine.Execution;

/// <summary>
/// The simulator's executor: no model. A step takes <c>iterationTime(output)</c> seconds (the
/// planner's cost model) on the virtual clock, and every sampling chunk gets a synthetic token
/// that depends only on its position, so runs are reproducible. Requests should set ignore_eos.
/// </summary>
public sealed class SimulatedModelRunner(VirtualClock clock, Func<SchedulerOutput, double> iterationTime, int vocabSize = 32_000) : IModelRunner
{
    // Ids 0..2 are BOS/EOS/UNK in most vocabularies; synthetic tokens avoid them.
    private const int FirstOrdinaryId = 3;

    public double LastIterationTime { get; private set; }

    public void Execute(SchedulerOutput output, Span<int> sampledTokens)
    {
        if (output.IsEmpty)
            return;
        double seconds = iterationTime(output);
        if (!(seconds >= 0) || double.IsInfinity(seconds))
            throw new InvalidOperationException($"cost model gave iteration time {seconds} s for {output.NumChunks} chunks / {output.NumBatchedTokens} tokens");
        LastIterationTime = seconds;
        clock.Advance(seconds);
        var chunks = output.Chunks;
        for (int k = 0; k < chunks.Length; k++)
            sampledTokens[k] = chunks[k].SamplesToken ? SyntheticToken(chunks[k].EndPosition) : IModelRunner.NoToken;
    }

    private int SyntheticToken(int position) =>
        FirstOrdinaryId + (int)((uint)position * 2654435761u % (uint)(vocabSize - FirstOrdinaryId));
}
