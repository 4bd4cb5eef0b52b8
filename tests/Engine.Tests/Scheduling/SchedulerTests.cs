using Xunit;
using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using static OServe.Engine.Tests.Scheduling.SchedulingTestKit;

namespace OServe.Engine.Tests.Scheduling;

public sealed class SchedulerTests
{
    [Fact]
    public void Chunked_prefill_splits_a_long_prompt_under_the_budget_and_samples_only_at_its_end()
    {
        var scheduler = new Scheduler(Config(budget: 32));
        var seq = Seq("a", promptLength: 100, maxTokens: 3);
        scheduler.Add(seq);

        var starts = new List<(int Start, int Count, bool Samples)>();
        for (int i = 0; i < 4; i++)
        {
            var output = Step(scheduler);
            var chunk = Assert.Single(output.Chunks);
            starts.Add((chunk.StartPosition, chunk.NumTokens, chunk.SamplesToken));
        }

        Assert.Equal([(0, 32, false), (32, 32, false), (64, 32, false), (96, 4, true)], starts);
        Assert.Equal(1, seq.NumOutputTokens);
        Assert.Equal(100, seq.NumComputedTokens);
    }

    [Fact]
    public void Decode_follows_prefill_with_a_gap_of_one()
    {
        var scheduler = new Scheduler(Config(budget: 64));
        var seq = Seq("a", promptLength: 10, maxTokens: 3);
        scheduler.Add(seq);

        Step(scheduler);
        var decode = Assert.Single(Step(scheduler).Chunks);
        Assert.Equal((10, 1, true), (decode.StartPosition, decode.NumTokens, decode.SamplesToken));
        Step(scheduler);

        Assert.True(seq.IsFinished);
        Assert.Equal(FinishReason.Length, seq.FinishReason);
        Assert.Equal(3, seq.NumOutputTokens);
        Assert.False(scheduler.HasUnfinishedSequences);
    }

    [Fact]
    public void Running_decodes_come_before_new_prefills_and_the_budget_is_never_exceeded()
    {
        var scheduler = new Scheduler(Config(budget: 16, maxSeqs: 8));
        for (int i = 0; i < 6; i++)
            scheduler.Add(Seq($"r{i}", promptLength: 7, maxTokens: 5));

        while (scheduler.HasUnfinishedSequences)
        {
            var output = scheduler.Schedule();
            Assert.True(output.NumBatchedTokens <= 16, $"step batched {output.NumBatchedTokens} tokens");
            Assert.Equal(output.NumBatchedTokens, output.Chunks.Sum(c => c.NumTokens));
            // Once a sequence is prefilling from the queue, every earlier chunk is from the running set.
            bool seenNewPrefill = false;
            foreach (var chunk in output.Chunks)
            {
                bool isNew = chunk.StartPosition == 0;
                Assert.False(seenNewPrefill && !isNew, "a running sequence was scheduled after a new prefill");
                seenNewPrefill |= isNew;
            }
            var sampled = output.Chunks.Select(c => c.SamplesToken ? NextToken(c.Sequence) : -1).ToArray();
            scheduler.Update(output, sampled);
        }
    }

    [Fact]
    public void MaxNumSeqs_caps_the_running_set()
    {
        var scheduler = new Scheduler(Config(budget: 1000, maxSeqs: 2, numBlocks: 200));
        for (int i = 0; i < 5; i++)
            scheduler.Add(Seq($"r{i}", promptLength: 4, maxTokens: 3));

        var output = Step(scheduler);
        Assert.Equal(["r0", "r1"], output.Chunks.Select(c => c.Sequence.RequestId));
        Assert.Equal(2, scheduler.NumRunning);
        Assert.Equal(3, scheduler.NumWaiting);
        RunToCompletion(scheduler);
        Assert.Equal(200, scheduler.BlockManager.NumFreeBlocks);
    }

    [Fact]
    public void Waiting_requests_start_in_arrival_order_and_a_blocked_head_is_not_overtaken()
    {
        // 6 blocks of 4 tokens: "big" (20 tokens) cannot start while "a" holds 2 blocks, and the
        // small "c" behind it must wait too (FCFS, no overtaking).
        var scheduler = new Scheduler(Config(numBlocks: 6, blockSize: 4, budget: 64, maxModelLen: 24));
        scheduler.Add(Seq("a", promptLength: 8, maxTokens: 2));
        scheduler.Add(Seq("big", promptLength: 20, maxTokens: 2));
        scheduler.Add(Seq("c", promptLength: 2, maxTokens: 2));

        var first = Step(scheduler);
        Assert.Equal(["a"], first.Chunks.Select(c => c.Sequence.RequestId));

        var order = new List<string>();
        while (scheduler.HasUnfinishedSequences)
            foreach (var chunk in Step(scheduler).Chunks)
                if (chunk.StartPosition == 0 && !order.Contains(chunk.Sequence.RequestId))
                    order.Add(chunk.Sequence.RequestId);
        Assert.Equal(["big", "c"], order); // "c" may be preempted by "big" later; only first starts count
    }

    [Fact]
    public void Running_out_of_blocks_preempts_the_newest_which_resumes_by_recompute_with_the_same_output()
    {
        // Reference: each request alone with plenty of memory.
        var alone = new Dictionary<string, int[]>();
        foreach (var id in new[] { "old", "new" })
        {
            var solo = new Scheduler(Config(numBlocks: 64));
            var s = Seq(id, promptLength: 6, maxTokens: 12);
            solo.Add(s);
            RunToCompletion(solo);
            alone[id] = [.. s.OutputTokens];
        }

        // 7 blocks of 4: both prefill (2 blocks each) but cannot both decode to 18 tokens (5 blocks each).
        var scheduler = new Scheduler(Config(numBlocks: 7, blockSize: 4, budget: 64, maxModelLen: 28));
        var old = Seq("old", 6, 12);
        var young = Seq("new", 6, 12);
        scheduler.Add(old);
        scheduler.Add(young);

        SchedulerOutput? preemptedAt = null;
        while (preemptedAt is null)
        {
            var output = Step(scheduler);
            if (!output.Preempted.IsEmpty)
                preemptedAt = output;
        }
        Assert.Same(young, Assert.Single(preemptedAt.Preempted));
        Assert.Equal(SequenceStatus.Preempted, young.Status);
        Assert.Equal(0, young.NumComputedTokens);
        Assert.Empty(young.BlockTable);
        Assert.Same(young, scheduler.Waiting[0]);
        Assert.DoesNotContain(preemptedAt.Chunks, c => c.Sequence == young);
        int outputsAtPreemption = young.NumOutputTokens;
        Assert.True(outputsAtPreemption > 0);

        // The resume recomputes prompt + generated tokens from position 0, then samples.
        ScheduledChunk? resume = null;
        while (scheduler.HasUnfinishedSequences)
            foreach (var chunk in Step(scheduler).Chunks)
                if (chunk.Sequence == young && resume is null)
                    resume = chunk;
        Assert.NotNull(resume);
        Assert.Equal(0, resume.Value.StartPosition);
        Assert.Equal(6 + outputsAtPreemption, resume.Value.NumTokens);
        Assert.True(resume.Value.SamplesToken);

        Assert.Equal(alone["old"], old.OutputTokens);
        Assert.Equal(alone["new"], young.OutputTokens);
        Assert.Equal(1, young.NumPreemptions);
        Assert.Equal(7, scheduler.BlockManager.NumFreeBlocks);
    }

    [Fact]
    public void Eos_and_stop_token_ids_finish_with_stop_unless_eos_is_ignored()
    {
        const int eos = 2;
        var scheduler = new Scheduler(Config(), new TokenStopCondition(eos));
        var eosSeq = Seq("eos", 4, 10, ignoreEos: false);
        var ignoring = Seq("ignore", 4, 3, ignoreEos: true);
        var stopId = Seq("stopid", 4, 10, ignoreEos: true, stopTokenIds: [77]);
        scheduler.Add(eosSeq);
        scheduler.Add(ignoring);
        scheduler.Add(stopId);

        int Next(Sequence s) => s.RequestId switch
        {
            "stopid" => s.NumOutputTokens == 1 ? 77 : 50,
            _ => s.NumOutputTokens == 1 ? eos : 50,
        };
        RunToCompletion(scheduler, next: Next);

        Assert.Equal((FinishReason.Stop, 2), (eosSeq.FinishReason, eosSeq.NumOutputTokens));
        Assert.Equal([50, eos], eosSeq.OutputTokens); // the stop token stays in the output tokens
        Assert.Equal((FinishReason.Length, 3), (ignoring.FinishReason, ignoring.NumOutputTokens));
        Assert.Equal((FinishReason.Stop, 2), (stopId.FinishReason, stopId.NumOutputTokens));
    }

    [Fact]
    public void Abort_of_running_and_waiting_requests_frees_their_blocks_and_reports_them_once()
    {
        var scheduler = new Scheduler(Config(numBlocks: 20, maxSeqs: 1, maxModelLen: 80));
        var running = Seq("run", 9, 50);
        var waiting = Seq("wait", 9, 50);
        scheduler.Add(running);
        scheduler.Add(waiting);
        Step(scheduler);
        Assert.Equal(3, scheduler.BlockManager.NumUsedBlocks);

        Assert.True(scheduler.Abort("run"));
        Assert.True(scheduler.Abort("wait"));
        Assert.False(scheduler.Abort("run"));
        Assert.False(scheduler.Abort("never-seen"));

        Assert.Equal(20, scheduler.BlockManager.NumFreeBlocks);
        Assert.Equal((FinishReason.Abort, SequenceStatus.Finished), (running.FinishReason, running.Status));
        Assert.False(scheduler.HasUnfinishedSequences);
        var output = scheduler.Schedule();
        Assert.Empty(output.Chunks);
        Assert.Equal(["run", "wait"], output.FinishedRequestIds.ToArray());
        Assert.Empty(scheduler.Schedule().FinishedRequestIds);
    }

    [Fact]
    public void An_abort_between_schedule_and_update_is_skipped_by_update()
    {
        var scheduler = new Scheduler(Config());
        var seq = Seq("a", 5, 5);
        scheduler.Add(seq);
        var output = scheduler.Schedule();
        scheduler.Abort("a");
        scheduler.Update(output, [42]);
        Assert.Equal(0, seq.NumOutputTokens);
        Assert.Equal(64, scheduler.BlockManager.NumFreeBlocks);
    }

    [Fact]
    public void Add_rejects_requests_that_can_never_run_naming_the_field()
    {
        var scheduler = new Scheduler(Config(maxModelLen: 64));
        var tooLong = Assert.Throws<ArgumentException>(() => scheduler.Add(Seq("long", 60, 10)));
        Assert.Equal("max_tokens", tooLong.ParamName);
        Assert.Contains("60 tokens", tooLong.Message);
        Assert.Contains("64", tooLong.Message);

        scheduler.Add(Seq("dup", 4, 4));
        var duplicate = Assert.Throws<ArgumentException>(() => scheduler.Add(Seq("dup", 4, 4)));
        Assert.Contains("already in flight", duplicate.Message);

        Assert.Throws<ArgumentException>(() => scheduler.Add(Seq("zero", 4, 0)));
    }

    [Fact]
    public void Config_rejects_a_max_model_len_the_cache_cannot_hold()
    {
        var error = Assert.Throws<ArgumentException>(() => new Scheduler(Config(numBlocks: 4, blockSize: 4, maxModelLen: 17)));
        Assert.Equal(nameof(SchedulerConfig.MaxModelLen), error.ParamName);
        Assert.Contains("16 tokens", error.Message);
        Assert.Throws<ArgumentException>(() => new Scheduler(Config(budget: 0)));
    }

    [Fact]
    public void Update_rejects_an_executor_that_skipped_a_sampled_token()
    {
        var scheduler = new Scheduler(Config());
        scheduler.Add(Seq("a", 3, 3));
        var output = scheduler.Schedule();
        Assert.Throws<InvalidOperationException>(() => scheduler.Update(output, [-1]));
        Assert.Throws<ArgumentException>(() => scheduler.Update(output, [1, 2]));
    }
}
