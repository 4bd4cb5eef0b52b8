using System.Collections.Concurrent;
using OServe.Engine.Execution;
using OServe.Engine.Scheduling;
using OServe.Engine.Tests.Scheduling;
using Xunit;

namespace OServe.Engine.Tests.Execution;

public sealed class AsyncEngineTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private static AsyncEngine Build(IModelRunner? runner = null, SchedulerConfig? config = null, AsyncEngineOptions? options = null) =>
        new(options ?? new AsyncEngineOptions { ModelName = "fake" },
            config ?? SchedulingTestKit.Config(numBlocks: 64, blockSize: 4, budget: 32, maxSeqs: 16, maxModelLen: 256),
            runner ?? new FakeModelRunner(), new FakeTokenizer());

    private static GenerationRequest Request(string id, int promptLength, int maxTokens) =>
        new(id, SchedulingTestKit.Prompt(id, promptLength), new SamplingParams { MaxTokens = maxTokens, IgnoreEos = true });

    private static async Task<List<GenerationEvent>> Collect(IAsyncEnumerable<GenerationEvent> events)
    {
        var list = new List<GenerationEvent>();
        await foreach (var ev in events)
            list.Add(ev);
        return list;
    }

    [Fact]
    public async Task Many_concurrent_requests_each_complete_exactly_once_with_their_own_tokens()
    {
        // 40 blocks of 4 tokens for up to 16 running requests of up to 40 tokens: heavy preemption.
        await using var engine = Build(config: SchedulingTestKit.Config(numBlocks: 40, blockSize: 4, budget: 24, maxSeqs: 16, maxModelLen: 64));
        var finished = new ConcurrentDictionary<string, int>();
        engine.RequestFinished += m => finished.AddOrUpdate(m.RequestId, 1, (_, n) => n + 1);
        var rng = new Random(3);
        var requests = Enumerable.Range(0, 200).Select(i => Request($"r{i}", rng.Next(1, 21), rng.Next(1, 21))).ToArray();

        var results = await Task.WhenAll(requests.Select(r => Task.Run(() => Collect(engine.GenerateAsync(r, CancellationToken.None))))).WaitAsync(Timeout);
        await engine.StopAsync();

        for (int i = 0; i < requests.Length; i++)
        {
            var r = requests[i];
            var events = results[i];
            Assert.All(events, e => Assert.Equal(r.RequestId, e.RequestId));
            Assert.Equal(FakeModelRunner.ExpectedOutput(r.RequestId, r.PromptTokens, r.Sampling.MaxTokens), events.Select(e => e.TokenId));
            Assert.Single(events, e => e.IsFinished);
            Assert.Equal((FinishReason.Length, r.Sampling.MaxTokens), (events[^1].FinishReason, events[^1].NumOutputTokens));
        }
        Assert.Equal(requests.Length, finished.Count);
        Assert.All(finished.Values, n => Assert.Equal(1, n));
        var snapshot = engine.Snapshot();
        Assert.Equal((0, 0, 0.0), (snapshot.NumRequestsRunning, snapshot.NumRequestsWaiting, snapshot.KvCacheUsage));
        Assert.Equal(requests.Sum(r => (long)r.Sampling.MaxTokens), snapshot.GenerationTokensTotal);
    }

    [Fact]
    public async Task A_full_admission_queue_rejects_with_retry_after_and_the_queued_requests_still_finish()
    {
        var runner = new GatedRunner();
        await using var engine = Build(runner, SchedulingTestKit.Config(maxSeqs: 1),
            new AsyncEngineOptions { ModelName = "fake", AdmissionCapacity = 2, MaxSchedulerWaiting = 1, RetryAfter = TimeSpan.FromSeconds(7) });

        var first = Task.Run(() => Collect(engine.GenerateAsync(Request("r0", 4, 2), CancellationToken.None)));
        Assert.True(await runner.Entered.WaitAsync(Timeout), "the loop never reached the runner");
        // The loop is held inside a step: the next two wait in the admission queue, the third is refused.
        var queued = new[] { engine.GenerateAsync(Request("r1", 4, 2), CancellationToken.None), engine.GenerateAsync(Request("r2", 4, 2), CancellationToken.None) };
        Assert.Equal(2, engine.Snapshot().NumRequestsWaiting);
        var rejected = Assert.Throws<AdmissionRejectedException>(() => engine.GenerateAsync(Request("r3", 4, 2), CancellationToken.None));
        Assert.Equal(TimeSpan.FromSeconds(7), rejected.RetryAfter);
        Assert.Contains("full", rejected.Message);

        runner.Open();
        Assert.Equal(2, (await first.WaitAsync(Timeout)).Count);
        foreach (var stream in queued)
            Assert.Equal(2, (await Collect(stream).WaitAsync(Timeout)).Count);
    }

    [Fact]
    public async Task Cancelling_the_consumer_aborts_the_request_and_frees_its_blocks()
    {
        await using var engine = Build(new SlowRunner());
        var aborted = new TaskCompletionSource<RequestMetrics>();
        engine.RequestFinished += m => { if (m.RequestId == "long") aborted.TrySetResult(m); };
        using var cts = new CancellationTokenSource();
        var other = Task.Run(() => Collect(engine.GenerateAsync(Request("other", 4, 5), CancellationToken.None)));

        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in engine.GenerateAsync(Request("long", 8, 200), cts.Token))
                if (++seen == 3)
                    cts.Cancel();
        }).WaitAsync(Timeout);

        var metrics = await aborted.Task.WaitAsync(Timeout);
        Assert.Equal(FinishReason.Abort, metrics.FinishReason);
        Assert.InRange(metrics.NumOutputTokens, 3, 199);
        Assert.Equal(5, (await other.WaitAsync(Timeout)).Count);
        await engine.StopAsync();
        Assert.Equal(0.0, engine.Snapshot().KvCacheUsage);
    }

    [Fact]
    public async Task Leaving_the_enumeration_early_aborts_the_request()
    {
        // 250 steps of 20 ms: far longer than the abort takes to arrive, even on a loaded machine.
        await using var engine = Build(new SlowRunner(stepMilliseconds: 20));
        var finished = new TaskCompletionSource<RequestMetrics>();
        engine.RequestFinished += m => finished.TrySetResult(m);
        await foreach (var _ in engine.GenerateAsync(Request("a", 4, 250), CancellationToken.None))
            break;
        var metrics = await finished.Task.WaitAsync(Timeout);
        Assert.Equal(FinishReason.Abort, metrics.FinishReason);
    }

    [Fact]
    public async Task Stop_drains_every_admitted_request_then_refuses_new_ones()
    {
        var engine = Build();
        var streams = Enumerable.Range(0, 20).Select(i => engine.GenerateAsync(Request($"r{i}", 6, 9), CancellationToken.None)).ToArray();
        await engine.StopAsync().WaitAsync(Timeout);

        foreach (var stream in streams)
        {
            var events = await Collect(stream);
            Assert.Equal(9, events.Count);
            Assert.Equal(FinishReason.Length, events[^1].FinishReason);
        }
        var refused = Assert.Throws<AdmissionRejectedException>(() => engine.GenerateAsync(Request("late", 4, 2), CancellationToken.None));
        Assert.Contains("shutting down", refused.Message);
        await engine.DisposeAsync();
    }

    [Fact]
    public async Task Metrics_report_latencies_on_the_engine_clock()
    {
        await using var engine = Build();
        var metrics = new TaskCompletionSource<RequestMetrics>();
        engine.RequestFinished += m => metrics.TrySetResult(m);
        await Collect(engine.GenerateAsync(Request("a", 5, 4), CancellationToken.None));
        var m = await metrics.Task.WaitAsync(Timeout);

        Assert.Equal((5, 4, 3), (m.NumPromptTokens, m.NumOutputTokens, m.InterTokenLatencies.Count));
        Assert.True(m.ArrivalTime <= m.FirstScheduledTime && m.FirstScheduledTime <= m.FirstTokenTime && m.FirstTokenTime <= m.FinishedTime);
        Assert.Equal(m.FinishedTime - m.ArrivalTime, m.EndToEndLatency, 12);
        Assert.Equal(m.LastTokenTime - m.FirstTokenTime, m.InterTokenLatencies.Sum(), 9);
    }

    [Theory]
    [InlineData(0, 4, 1f, 1f, -1, "prompt")]
    [InlineData(4, 0, 1f, 1f, -1, "max_tokens")]
    [InlineData(4, 253, 1f, 1f, -1, "max_tokens")]
    [InlineData(4, 4, -0.5f, 1f, -1, "temperature")]
    [InlineData(4, 4, 1f, 0f, -1, "top_p")]
    [InlineData(4, 4, 1f, 1.5f, -1, "top_p")]
    [InlineData(4, 4, 1f, 1f, -2, "top_k")]
    public async Task Bad_requests_are_refused_naming_the_field(int promptLength, int maxTokens, float temperature, float topP, int topK, string field)
    {
        await using var engine = Build();
        var request = new GenerationRequest("bad", SchedulingTestKit.Prompt("bad", promptLength),
            new SamplingParams { MaxTokens = maxTokens, Temperature = temperature, TopP = topP, TopK = topK });
        var error = Assert.Throws<ArgumentException>(() => engine.GenerateAsync(request, CancellationToken.None));
        Assert.Equal(field, error.ParamName);
    }

    [Fact]
    public async Task Prompt_tokens_outside_the_vocabulary_are_refused()
    {
        await using var engine = Build();
        var error = Assert.Throws<ArgumentException>(() => engine.GenerateAsync(new GenerationRequest("v", [5, 600], new SamplingParams()), CancellationToken.None));
        Assert.Equal("prompt", error.ParamName);
        Assert.Contains("token 1 is 600", error.Message);
    }

    /// <summary>A millisecond per step: long requests stay in flight long enough to cancel.</summary>
    private sealed class SlowRunner(int stepMilliseconds = 1) : FakeModelRunner
    {
        public override void Execute(SchedulerOutput output, Span<int> sampledTokens)
        {
            if (!output.IsEmpty)
                Thread.Sleep(stepMilliseconds);
            base.Execute(output, sampledTokens);
        }
    }
}
