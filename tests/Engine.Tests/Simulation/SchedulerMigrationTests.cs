using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using Xunit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>Scheduler.Detach/Adopt, the hook live migration uses: a request continues where it stopped.</summary>
public sealed class SchedulerMigrationTests
{
    private static Scheduler Make(int blocks, int maxModelLen = 64) => new(new SchedulerConfig { NumKvBlocks = blocks, BlockSize = 4, MaxNumBatchedTokens = 64, MaxNumSeqs = 8, MaxModelLen = maxModelLen });

    private static void Step(Scheduler s)
    {
        var output = s.Schedule();
        var tokens = new int[output.NumChunks];
        for (int k = 0; k < tokens.Length; k++) tokens[k] = output.Chunks[k].SamplesToken ? 7 : IModelRunner.NoToken;
        s.Update(output, tokens);
    }

    [Fact]
    public void DetachedRunningRequest_IsAdoptedWithItsKv_AndDecodesOnTheNextStep()
    {
        var source = Make(16);
        var seq = new Sequence("a", new SyntheticPrompt(10), new SamplingParams { MaxTokens = 5, IgnoreEos = true });
        source.Add(seq);
        Step(source);
        Step(source);
        Assert.True(source.Detach(seq));
        Assert.Equal(16, source.BlockManager.NumFreeBlocks);
        Assert.False(source.HasUnfinishedSequences);

        var target = Make(16);
        target.Adopt(seq);
        Assert.Equal(SequenceStatus.Running, seq.Status);
        Assert.Equal(11, seq.NumComputedTokens);
        var next = target.Schedule();
        Assert.Equal((11, 1), (next.Chunks[0].StartPosition, next.Chunks[0].NumTokens));
    }

    [Fact]
    public void AdoptWithoutRoomForTheKv_FallsBackToRecompute()
    {
        var source = Make(16);
        var seq = new Sequence("a", new SyntheticPrompt(26), new SamplingParams { MaxTokens = 3, IgnoreEos = true });
        source.Add(seq);
        Step(source);
        source.Detach(seq);
        var target = Make(8, maxModelLen: 32); // 26 computed tokens need 7 blocks; "b" holds 2 of the 8
        target.Add(new Sequence("b", new SyntheticPrompt(6), new SamplingParams { MaxTokens = 2, IgnoreEos = true }));
        Step(target);
        target.Adopt(seq);
        Assert.Equal((SequenceStatus.Waiting, 0), (seq.Status, seq.NumComputedTokens));
        Assert.Equal(1, seq.NumOutputTokens);
    }
}
