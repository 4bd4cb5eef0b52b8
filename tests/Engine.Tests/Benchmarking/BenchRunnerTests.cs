using OServe.Engine.Benchmarking;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

/// <summary>The whole load generator against a real Kestrel server on loopback.</summary>
public sealed class BenchRunnerTests
{
    private static BenchOptions Options(FakeOpenAiServer server, int numPrompts = 40) => new()
    {
        BaseUrl = server.BaseUrl,
        Model = "fake",
        NumPrompts = numPrompts,
        RandomInputLen = 20,
        RandomOutputLen = 6,
        RandomRangeRatio = 0.5,
        MaxConcurrency = 8,
        Seed = 7,
        SkipInitialTest = true,
        MetricPercentiles = [50, 90, 99],
    };

    [Fact]
    public async Task CountsAndTokensAddUpWithWhatTheServerSaw()
    {
        await using var server = FakeOpenAiServer.Start();
        var options = Options(server);
        var result = await BenchRunner.RunAsync(options);

        var planned = BenchWorkload.Build(options).Requests;
        Assert.Equal(40, result.Completed);
        Assert.Equal(0, result.Failed);
        Assert.Equal(40, server.Seen.Count);
        Assert.Equal(0, result.NumPromptLenMismatches);
        Assert.StartsWith("server:", result.TokenizerId);
        // Prompt lengths are in the server's tokens (one per word plus its BOS) and exactly as planned.
        Assert.Equal(planned.Select(r => r.InputLen).Order(), server.Seen.Select(s => FakeOpenAiServer.WordCount(s.Prompt) + 1).Order());
        Assert.Equal(planned.Sum(r => (long)r.InputLen), result.TotalInputTokens);
        Assert.Equal(planned.Select(r => r.OutputLen).Order(), server.Seen.Select(s => s.MaxTokens).Order());
        Assert.Equal(planned.Sum(r => (long)r.OutputLen), result.TotalOutputTokens);
        Assert.All(server.Seen, s => Assert.True(s.IgnoreEos && s.Stream && s.IncludeUsage && !s.IsChat));
        Assert.Equal(40, result.NumOutputLensFromUsage);
        Assert.All(result.Outcomes, o =>
        {
            Assert.Equal(o.OutputTokens - 1, o.Itl.Length);
            Assert.InRange(o.Ttft, 0, o.Latency);
            Assert.StartsWith(" w0 w1", o.GeneratedText);
        });
        Assert.InRange(result.MaxConcurrentRequests, 1, 8);
        Assert.InRange(server.MaxInFlight, 1, 8);
        Assert.Equal(result.Completed / result.Duration, result.RequestThroughput, 6);
        Assert.Equal((result.TotalInputTokens + result.TotalOutputTokens) / result.Duration, result.TotalTokenThroughput, 6);
    }

    [Fact]
    public async Task FailedRequestsAreCountedWithTheirMessages()
    {
        await using var server = FakeOpenAiServer.Start(n => n % 3 == 0 ? FakeBehavior.Http500 : FakeBehavior.Stream);
        var result = await BenchRunner.RunAsync(Options(server, numPrompts: 30));

        Assert.Equal(10, result.Failed);
        Assert.Equal(20, result.Completed);
        var ok = result.Outcomes.Where(o => o.Success).ToList();
        Assert.Equal(ok.Sum(o => (long)o.PromptLen), result.TotalInputTokens);
        Assert.Equal(ok.Sum(o => (long)o.OutputTokens), result.TotalOutputTokens);
        var (error, count) = Assert.Single(result.TopErrors());
        Assert.Equal(10, count);
        Assert.Equal("HTTP 500 Internal Server Error: {\"error\":{\"message\":\"fake overload\"}}", error);
    }

    [Theory]
    // A reset may discard chunks already in the client's socket buffer, so the count before it varies.
    [InlineData(FakeBehavior.BreakAfterTwoChunks, "stream broken after ")]
    [InlineData(FakeBehavior.NoDone, "stream ended after ")]
    [InlineData(FakeBehavior.ErrorEvent, "error in stream after 1 chunks: fake engine crash")]
    public async Task BrokenStreamsAreFailures(FakeBehavior broken, string message)
    {
        await using var server = FakeOpenAiServer.Start(n => n % 4 == 1 ? broken : FakeBehavior.Stream);
        var options = Options(server, numPrompts: 20) with { RandomOutputLen = 5, RandomRangeRatio = 0 };
        var result = await BenchRunner.RunAsync(options);

        Assert.Equal(5, result.Failed);
        Assert.Equal(15, result.Completed);
        Assert.Equal(15L * 5, result.TotalOutputTokens);
        Assert.All(result.Outcomes.Where(o => !o.Success), o => Assert.StartsWith(message, o.Error));
    }

    [Fact]
    public async Task AStalledStreamTimesOut()
    {
        await using var server = FakeOpenAiServer.Start(n => n == 0 ? FakeBehavior.Stall : FakeBehavior.Stream);
        var options = Options(server, numPrompts: 4) with { RequestTimeout = TimeSpan.FromMilliseconds(500) };
        var result = await BenchRunner.RunAsync(options);

        Assert.Equal(1, result.Failed);
        Assert.Equal("timeout after 0.5 s (1 chunks received)", result.TopErrors()[0].Error);
    }

    [Fact]
    public async Task WithoutUsageChunksOutputIsCountedFromChunks()
    {
        await using var server = FakeOpenAiServer.Start(_ => FakeBehavior.NoUsage);
        var options = Options(server, numPrompts: 10);
        var result = await BenchRunner.RunAsync(options);

        Assert.Equal(0, result.NumOutputLensFromUsage);
        Assert.Equal(BenchWorkload.Build(options).Requests.Sum(r => (long)r.OutputLen), result.TotalOutputTokens);
        Assert.Contains(result.Notes, n => n.Contains("counted from stream chunks"));
    }

    [Fact]
    public async Task ChatEndpointSendsMessagesAndReadsDeltas()
    {
        await using var server = FakeOpenAiServer.Start();
        var options = Options(server, numPrompts: 10) with { Endpoint = "/v1/chat/completions", RandomRangeRatio = 0 };
        var result = await BenchRunner.RunAsync(options);

        Assert.Equal("openai-chat", result.Backend);
        Assert.Equal(10, result.Completed);
        Assert.All(server.Seen, s => Assert.True(s.IsChat));
        Assert.Equal(60, result.TotalOutputTokens);
        Assert.All(result.Outcomes, o => Assert.Equal(" w0 w1 w2 w3 w4 w5", o.GeneratedText));
    }

    [Fact]
    public async Task WithoutTokenizeTheLocalGpt2TokenizerIsUsedAndSaid()
    {
        await using var server = FakeOpenAiServer.Start(hasTokenize: false);
        var result = await BenchRunner.RunAsync(Options(server, numPrompts: 5));

        Assert.Equal("gpt2", result.TokenizerId);
        Assert.Contains(result.Notes, n => n.StartsWith("the server has no usable /tokenize (POST ") && n.Contains("HTTP 404"));
        Assert.Equal(5, result.Completed);
    }

    [Fact]
    public async Task TheInitialTestRequestFailsFastOnAServerError()
    {
        await using var server = FakeOpenAiServer.Start(_ => FakeBehavior.Http500);
        var e = await Assert.ThrowsAsync<BenchServerException>(() => BenchRunner.RunAsync(Options(server) with { SkipInitialTest = false }));
        Assert.Equal($"initial test request to {server.BaseUrl}v1/completions failed: HTTP 500 Internal Server Error: {{\"error\":{{\"message\":\"fake overload\"}}}}", e.Message);
        Assert.Single(server.Seen);
    }

    [Fact]
    public async Task PacedArrivalsSpreadTheRequestsOverTime()
    {
        await using var server = FakeOpenAiServer.Start();
        var options = Options(server, numPrompts: 20) with { RequestRate = 50, MaxConcurrency = null };
        var result = await BenchRunner.RunAsync(options);

        var lastArrival = BenchWorkload.Build(options).Requests[^1].ArrivalSec;
        Assert.True(lastArrival > 0.1, $"last arrival {lastArrival}");
        // The dispatcher sends a request due within the next millisecond at once rather than sleep on a coarse timer.
        Assert.True(result.Duration >= lastArrival - 0.002, $"duration {result.Duration} < last arrival {lastArrival}");
        Assert.Equal(20, result.Completed);
        // Each outcome records when it was sent: never before its arrival (less the millisecond of timer slack).
        var arrivals = BenchWorkload.Build(options).Requests.Select(r => r.ArrivalSec).ToArray();
        Assert.All(result.Outcomes.Zip(arrivals), p => Assert.True(p.First.SentAtS >= p.Second - 0.002, $"sent at {p.First.SentAtS}, due at {p.Second}"));
        Assert.True(result.Outcomes[^1].SentAtS >= lastArrival - 0.002);
    }
}
