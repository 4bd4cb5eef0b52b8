using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Engine.Tests.Scheduling;
using Xunit;

namespace OServe.Engine.Tests.Execution;

public sealed class EngineCoreTests
{
    private static (EngineCore Core, CollectingSink Sink) Build(
        SchedulerConfig? config = null, IModelRunner? runner = null, FakeTokenizer? tokenizer = null, IClock? clock = null)
    {
        tokenizer ??= new FakeTokenizer();
        var sink = new CollectingSink();
        var scheduler = new Scheduler(config ?? SchedulingTestKit.Config(numBlocks: 64, blockSize: 4, budget: 16), new TokenStopCondition(tokenizer.EosTokenId));
        return (new EngineCore(scheduler, runner ?? new FakeModelRunner(), clock ?? new VirtualClock(), sink, tokenizer), sink);
    }

    private static GenerationRequest Request(string id, int promptLength, int maxTokens, params string[] stop) =>
        new(id, SchedulingTestKit.Prompt(id, promptLength), new SamplingParams { MaxTokens = maxTokens, Stop = stop, IgnoreEos = true });

    private static void Drain(EngineCore core)
    {
        for (int i = 0; core.HasWork; i++)
        {
            Assert.True(i < 10_000, "engine did not drain");
            core.Step();
        }
    }

    [Fact]
    public void Every_request_gets_its_tokens_in_order_then_exactly_one_finish()
    {
        // 12 blocks of 4 tokens for three requests of up to 34 tokens: preemptions happen.
        var (core, sink) = Build(SchedulingTestKit.Config(numBlocks: 12, blockSize: 4, budget: 16, maxModelLen: 48));
        var requests = new[] { Request("a", 20, 12), Request("b", 3, 30), Request("c", 9, 7) };
        foreach (var r in requests)
            core.AddRequest(r);
        Drain(core);

        Assert.True(core.Scheduler.NumPreemptionsTotal > 0, "the setup was meant to preempt");
        foreach (var r in requests)
        {
            var outputs = sink.Of(r.RequestId);
            var expected = FakeModelRunner.ExpectedOutput(r.RequestId, r.PromptTokens, r.Sampling.MaxTokens);
            Assert.Equal(expected, outputs.Select(o => o.TokenId));
            Assert.Single(outputs, o => o.IsFinished);
            Assert.Equal(FinishReason.Length, outputs[^1].FinishReason);
            Assert.Equal(string.Concat(expected.Select(t => $"<{t}>")), sink.TextOf(r.RequestId));
        }
        Assert.Equal(12, core.Scheduler.BlockManager.NumFreeBlocks);
        Assert.Equal(requests.Sum(r => r.Sampling.MaxTokens), core.GenerationTokensTotal);
        Assert.Equal(requests.Sum(r => r.PromptTokens.Count), core.PromptTokensTotal);
    }

    [Fact]
    public void A_stop_string_across_tokens_ends_the_text_before_it_and_no_part_of_it_is_ever_sent()
    {
        var texts = new Dictionary<int, string> { [10] = "Hel", [11] = "lo S", [12] = "T", [13] = "OP and", [14] = " more" };
        int[] script = [10, 11, 12, 13, 14, 14, 14];
        var runner = new FakeModelRunner(s => script[s.NumOutputTokens]);
        var (core, sink) = Build(runner: runner, tokenizer: new FakeTokenizer(texts));
        core.AddRequest(Request("a", 4, 7, "STOP"));
        Drain(core);

        var outputs = sink.Of("a");
        Assert.Equal([10, 11, 12, 13], outputs.Select(o => o.TokenId));
        Assert.Equal(FinishReason.Stop, outputs[^1].FinishReason);
        Assert.Equal("Hello ", sink.TextOf("a"));
        Assert.All(outputs, o => Assert.DoesNotContain("S", o.TextDelta));
        Assert.Equal(64, core.Scheduler.BlockManager.NumFreeBlocks);
    }

    /// <summary>
    /// The cluster's front end resumes a request whose worker died from its prompt and the tokens it
    /// streamed. What the client had: tokens 10 and 11, text "Hell" ("o S" held back for "STOP").
    /// The resumed request must send the held-back text and find the stop string that began before
    /// the resume, so the client ends with the text one replica would have sent.
    /// </summary>
    [Fact]
    public void A_resumed_request_sends_the_text_held_back_before_it_and_finds_a_stop_string_across_it()
    {
        var texts = new Dictionary<int, string> { [10] = "Hel", [11] = "lo S", [12] = "T", [13] = "OP and", [14] = " more" };
        int[] rest = [12, 13, 14, 14, 14];
        var (core, sink) = Build(runner: new FakeModelRunner(s => rest[s.NumOutputTokens]), tokenizer: new FakeTokenizer(texts));
        var original = Request("a", 4, 7, "STOP");
        core.AddRequest(new GenerationRequest("a~1", [.. original.PromptTokens, 10, 11], original.Sampling with { MaxTokens = 5 }) { ResumedOutputTokens = 2 });
        Drain(core);

        var outputs = sink.Of("a~1");
        Assert.Equal([12, 13], outputs.Select(o => o.TokenId));
        Assert.Equal(FinishReason.Stop, outputs[^1].FinishReason);
        Assert.Equal("Hello ", "Hell" + sink.TextOf("a~1")); // as A_stop_string_across_tokens_... sends it unresumed

        var (fresh, freshSink) = Build(runner: new FakeModelRunner(s => rest[s.NumOutputTokens]), tokenizer: new FakeTokenizer(texts));
        var e = Assert.Throws<ArgumentException>(() => fresh.AddRequest(new GenerationRequest("b", [1, 2], original.Sampling) { ResumedOutputTokens = 2 }));
        Assert.Equal(nameof(GenerationRequest.ResumedOutputTokens), e.ParamName);
        Assert.Empty(freshSink.Of("b"));
    }

    [Fact]
    public void Held_back_text_that_does_not_become_a_stop_string_is_sent_later_and_flushed_at_the_end()
    {
        var texts = new Dictionary<int, string> { [10] = "xS", [11] = "T", [12] = "y" };
        int[] script = [10, 11, 12, 11];
        var (core, sink) = Build(runner: new FakeModelRunner(s => script[s.NumOutputTokens]), tokenizer: new FakeTokenizer(texts));
        core.AddRequest(Request("a", 4, 4, "STOP"));
        Drain(core);

        var deltas = sink.Of("a").Select(o => o.TextDelta).ToArray();
        // "STOP" needs 3 chars held back: "xS", "xST" send nothing, "xSTy" sends "x", the last flushes.
        Assert.Equal(["", "", "x", "STyT"], deltas);
        Assert.Equal(FinishReason.Length, sink.Of("a")[^1].FinishReason);
    }

    [Fact]
    public void Eos_finishes_with_stop_and_adds_no_text()
    {
        int[] script = [10, FakeTokenizer.Eos];
        var (core, sink) = Build(runner: new FakeModelRunner(s => script[s.NumOutputTokens]));
        core.AddRequest(new GenerationRequest("a", [5, 6], new SamplingParams { MaxTokens = 10 }));
        Drain(core);

        var last = sink.Of("a")[^1];
        Assert.Equal((FakeTokenizer.Eos, FinishReason.Stop, ""), (last.TokenId, last.FinishReason, last.TextDelta));
        Assert.Equal("<10>", sink.TextOf("a"));
    }

    [Fact]
    public void Abort_frees_the_blocks_and_emits_one_abort_output()
    {
        var (core, sink) = Build();
        core.AddRequest(Request("a", 10, 20));
        core.AddRequest(Request("b", 10, 20));
        core.Step();
        core.Step();
        Assert.True(core.Scheduler.BlockManager.NumUsedBlocks > 0);

        Assert.True(core.Abort("a"));
        Assert.False(core.Abort("a"));
        Assert.False(core.Abort("unknown"));
        var abort = Assert.Single(sink.Of("a"), o => o.IsFinished);
        Assert.Equal((IModelRunner.NoToken, FinishReason.Abort), (abort.TokenId, abort.FinishReason));

        Drain(core);
        Assert.Equal(20, sink.Of("b").Count);
        Assert.Equal(64, core.Scheduler.BlockManager.NumFreeBlocks);
    }

    [Fact]
    public void A_failing_step_fails_only_its_requests_and_the_engine_goes_on()
    {
        var runner = new FakeModelRunner(s => s.RequestId == "bad" ? throw new InvalidOperationException("device lost") : SchedulingTestKit.NextToken(s));
        var (core, sink) = Build(SchedulingTestKit.Config(maxSeqs: 1), runner);
        core.AddRequest(Request("bad", 4, 3));
        core.AddRequest(Request("good", 4, 3));
        Drain(core);

        var failed = Assert.Single(sink.Of("bad"));
        Assert.Equal(FinishReason.Abort, failed.FinishReason);
        Assert.Equal("device lost", failed.Error?.Message);
        Assert.Equal(3, sink.Of("good").Count);
        Assert.Equal(64, core.Scheduler.BlockManager.NumFreeBlocks);
    }

    [Fact]
    public void On_a_virtual_clock_the_latencies_are_exactly_the_iteration_times()
    {
        var clock = new VirtualClock();
        // 10 ms per step plus 1 ms per batched token: prefill of 10 = 20 ms, each decode 11 ms.
        var runner = new SimulatedModelRunner(clock, o => 0.010 + 0.001 * o.NumBatchedTokens);
        var (core, sink) = Build(SchedulingTestKit.Config(budget: 64), runner, clock: clock);
        var seq = core.AddRequest(Request("a", 10, 5));
        Drain(core);

        Assert.Equal(0.020, seq.FirstTokenTime, 9);
        Assert.Equal(0.020 + 4 * 0.011, seq.FinishedTime, 9);
        Assert.Equal(0.0, seq.FirstScheduledTime);
        Assert.All(sink.Of("a").Skip(1), o => Assert.Equal(0.011, o.InterTokenLatency, 9));
        Assert.True(sink.Of("a")[0].IsFirstToken);
    }

    [Fact]
    public void The_step_observer_sees_each_step_with_its_clock_times_and_batch_shape()
    {
        var clock = new VirtualClock();
        var log = new StepLog();
        var tokenizer = new FakeTokenizer();
        var scheduler = new Scheduler(SchedulingTestKit.Config(numBlocks: 64, blockSize: 4, budget: 16), new TokenStopCondition(tokenizer.EosTokenId));
        var core = new EngineCore(scheduler, new TimedRunner(new FakeModelRunner(), clock, 0.010), clock, new CollectingSink(), tokenizer) { StepObserver = log };
        core.AddRequest(Request("a", 5, 3));
        core.AddRequest(Request("b", 3, 3));
        Drain(core);

        var steps = log.Snapshot();
        Assert.Equal(3, steps.Count); // both prompts in one step, then two steps of two decodes
        Assert.Equal([0.0, 0.010, 0.020], steps.Select(s => Math.Round(s.StartTime, 9)));
        Assert.All(steps, s => Assert.Equal(0.010, s.Seconds, 9));
        Assert.Equal(new BatchShape(8, 2, 5 * 2.5 + 3 * 1.5, 0, 0), steps[0].Shape);
        Assert.Equal(new BatchShape(0, 0, 0, 2, 6 + 4), steps[1].Shape);
        Assert.Equal(new BatchShape(0, 0, 0, 2, 7 + 5), steps[2].Shape);
    }

    /// <summary>A runner whose every step takes a fixed time on a virtual clock.</summary>
    private sealed class TimedRunner(IModelRunner inner, VirtualClock clock, double seconds) : IModelRunner
    {
        public void Execute(SchedulerOutput output, Span<int> sampledTokens)
        {
            clock.Advance(seconds);
            inner.Execute(output, sampledTokens);
        }
    }
}
