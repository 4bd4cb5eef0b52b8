using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using Xunit;
using static OServe.Engine.Tests.Scheduling.SchedulingTestKit;

namespace OServe.Engine.Tests.Scheduling;

/// <summary>
/// Randomized workloads under tight memory: arrivals between steps, random prompt and output
/// lengths, stop tokens, aborts. After every step the bookkeeping invariants must hold, and in
/// the end every request finishes exactly once with the output length its finish reason implies.
/// </summary>
public sealed class SchedulerPropertyTests
{
    private const int StopToken = 3;

    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 24)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Invariants_hold_every_step_and_every_request_finishes_exactly_once(int seed)
    {
        var rng = new Random(seed);
        int blockSize = rng.Next(1, 5) * 2;
        // From exactly one longest request's worth of blocks up: 19 of the 24 seeds preempt (up to 73 times).
        var config = Config(
            numBlocks: (48 + blockSize - 1) / blockSize + rng.Next(0, 16), blockSize: blockSize, budget: rng.Next(8, 64),
            maxSeqs: rng.Next(1, 9), maxModelLen: 48);
        var scheduler = new Scheduler(config);
        var all = new List<Sequence>();
        var aborted = new HashSet<string>();
        var finishedReports = new List<string>();
        int numRequests = rng.Next(20, 60);

        for (int step = 0; step < 20_000 && (all.Count < numRequests || scheduler.HasUnfinishedSequences); step++)
        {
            if (all.Count < numRequests && rng.NextDouble() < 0.4)
            {
                int prompt = rng.Next(1, 30);
                var seq = Seq($"s{all.Count}", prompt, rng.Next(1, 48 - prompt + 1), stopTokenIds: rng.NextDouble() < 0.3 ? [StopToken] : []);
                all.Add(seq);
                scheduler.Add(seq);
            }
            if (rng.NextDouble() < 0.03 && all.Count > 0)
            {
                var victim = all[rng.Next(all.Count)];
                if (scheduler.Abort(victim.RequestId))
                    aborted.Add(victim.RequestId);
            }

            var output = scheduler.Schedule();
            CheckOutput(config, scheduler, output);
            finishedReports.AddRange(output.FinishedRequestIds);
            var sampled = new int[output.NumChunks];
            for (int k = 0; k < sampled.Length; k++)
                sampled[k] = output.Chunks[k].SamplesToken ? (rng.NextDouble() < 0.05 ? StopToken : NextToken(output.Chunks[k].Sequence)) : -1;
            scheduler.Update(output, sampled);
            CheckBlocks(scheduler);
        }
        finishedReports.AddRange(scheduler.Schedule().FinishedRequestIds);

        Assert.False(scheduler.HasUnfinishedSequences, "the workload did not drain");
        Assert.Equal(config.NumKvBlocks, scheduler.BlockManager.NumFreeBlocks);
        Assert.Equal(all.Select(s => s.RequestId).Order(), finishedReports.Order()); // each exactly once
        foreach (var seq in all)
        {
            Assert.Equal(SequenceStatus.Finished, seq.Status);
            switch (seq.FinishReason)
            {
                case FinishReason.Length:
                    Assert.Equal(seq.Sampling.MaxTokens, seq.NumOutputTokens);
                    break;
                case FinishReason.Stop:
                    Assert.Equal(StopToken, seq.OutputTokens[^1]);
                    Assert.Contains(StopToken, seq.Sampling.StopTokenIds);
                    Assert.True(seq.NumOutputTokens <= seq.Sampling.MaxTokens);
                    break;
                case FinishReason.Abort:
                    Assert.Contains(seq.RequestId, aborted);
                    break;
                default:
                    Assert.Fail($"{seq.RequestId} finished with {seq.FinishReason}");
                    break;
            }
            if (seq.FinishReason != FinishReason.Stop)
                Assert.True(seq.Sampling.StopTokenIds.Count == 0 || !seq.OutputTokens.Contains(StopToken));
        }
    }

    private static void CheckOutput(SchedulerConfig config, Scheduler scheduler, SchedulerOutput output)
    {
        Assert.True(output.NumBatchedTokens <= config.MaxNumBatchedTokens);
        Assert.True(output.NumChunks <= config.MaxNumSeqs);
        Assert.True(scheduler.NumRunning <= config.MaxNumSeqs);
        var seen = new HashSet<Sequence>();
        int total = 0;
        foreach (var chunk in output.Chunks)
        {
            var seq = chunk.Sequence;
            Assert.True(seen.Add(seq), $"{seq.RequestId} scheduled twice in one step");
            Assert.Equal(SequenceStatus.Running, seq.Status);
            Assert.Equal(seq.NumComputedTokens, chunk.StartPosition);
            Assert.True(chunk.NumTokens > 0);
            Assert.True(chunk.EndPosition <= seq.NumTokens);
            Assert.Equal(chunk.EndPosition == seq.NumTokens, chunk.SamplesToken);
            Assert.True(seq.NumBlocks * config.BlockSize >= chunk.EndPosition, $"{seq.RequestId} lacks KV blocks for its chunk");
            total += chunk.NumTokens;
        }
        Assert.Equal(total, output.NumBatchedTokens);
        foreach (var victim in output.Preempted)
            Assert.DoesNotContain(victim, seen);
    }

    private static void CheckBlocks(Scheduler scheduler)
    {
        int held = 0;
        var owners = new HashSet<int>();
        foreach (var seq in scheduler.Running)
        {
            held += seq.NumBlocks;
            foreach (var block in seq.BlockTable)
                Assert.True(owners.Add(block), $"block {block} has two owners");
        }
        foreach (var seq in scheduler.Waiting)
        {
            Assert.Equal(0, seq.NumBlocks);
            Assert.Equal(0, seq.NumComputedTokens);
        }
        Assert.Equal(scheduler.BlockManager.NumUsedBlocks, held);
    }
}
