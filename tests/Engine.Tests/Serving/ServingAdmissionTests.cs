using System.Net;
using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

/// <summary>Full admission answers 429/503 with Retry-After; a client that leaves cancels its engine request.</summary>
public sealed class ServingAdmissionTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private const string StreamBody = """{"model":"fake-model","prompt":"Hi","max_tokens":5,"stream":true}""";

    [Theory]
    [InlineData(FakeBehavior.RejectOnCall, false)]
    [InlineData(FakeBehavior.RejectOnFirstRead, false)]
    [InlineData(FakeBehavior.RejectOnCall, true)]
    [InlineData(FakeBehavior.RejectOnFirstRead, true)]
    public async Task Engine_admission_rejection_is_429_with_the_engines_retry_after(FakeBehavior behavior, bool stream)
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine { Behavior = behavior, RetryAfter = TimeSpan.FromMilliseconds(2500) });

        using var response = await server.PostAsync("/v1/completions", $$"""{"model":"fake-model","prompt":"Hi","stream":{{(stream ? "true" : "false")}}}""");

        var error = await ServingErrorTests.AssertErrorAsync(response, HttpStatusCode.TooManyRequests, "rate_limit_error", null);
        Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("admission queue full", error.GetProperty("message").GetString());
        Assert.Equal(TimeSpan.FromSeconds(3), response.Headers.RetryAfter?.Delta); // rounded up, never early
    }

    [Fact]
    public async Task Rejection_status_can_be_503()
    {
        await using var server = await ServingTestServer.StartAsync(new FakeEngine { Behavior = FakeBehavior.RejectOnCall },
            new ServeOptions { RejectStatusCode = 503 });

        using var response = await server.PostAsync("/v1/chat/completions", """{"model":"fake-model","messages":[{"role":"user","content":"Hi"}]}""");

        await ServingErrorTests.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "service_unavailable", null);
        Assert.Equal(TimeSpan.FromSeconds(2), response.Headers.RetryAfter?.Delta);
    }

    [Fact]
    public async Task Server_concurrency_cap_rejects_the_request_over_it_and_frees_the_slot_when_the_client_leaves()
    {
        var engine = new FakeEngine { Behavior = FakeBehavior.BlockAfterFirstToken };
        await using var server = await ServingTestServer.StartAsync(engine,
            new ServeOptions { MaxConcurrentRequests = 1, RetryAfter = TimeSpan.FromSeconds(4) });

        using var firstCancel = new CancellationTokenSource();
        var first = await StartStreamAsync(server, firstCancel.Token);
        await engine.FirstTokenSent.Task.WaitAsync(Patience);

        using var second = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi"}""");
        var error = await ServingErrorTests.AssertErrorAsync(second, HttpStatusCode.TooManyRequests, "rate_limit_error", null);
        Assert.Contains("limit of 1 concurrent requests", error.GetProperty("message").GetString());
        Assert.Equal(TimeSpan.FromSeconds(4), second.Headers.RetryAfter?.Delta);

        firstCancel.Cancel();
        first.Dispose();
        await engine.Cancelled.Task.WaitAsync(Patience);

        engine.Behavior = FakeBehavior.Script;
        using var third = await SendWhenSlotFreeAsync(server);
        Assert.Equal(HttpStatusCode.OK, third.StatusCode);
    }

    [Fact]
    public async Task Client_disconnect_mid_stream_cancels_the_engine_request()
    {
        var engine = new FakeEngine { Behavior = FakeBehavior.BlockAfterFirstToken };
        await using var server = await ServingTestServer.StartAsync(engine);
        using var cancel = new CancellationTokenSource();

        var response = await StartStreamAsync(server, cancel.Token);
        using (var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token)))
            Assert.StartsWith("data: ", await reader.ReadLineAsync(cancel.Token));
        cancel.Cancel();
        response.Dispose();

        await engine.Cancelled.Task.WaitAsync(Patience);
    }

    [Fact]
    public async Task Client_disconnect_while_waiting_for_a_non_streaming_answer_cancels_the_engine_request()
    {
        var engine = new FakeEngine { Behavior = FakeBehavior.BlockAfterFirstToken };
        await using var server = await ServingTestServer.StartAsync(engine);
        using var cancel = new CancellationTokenSource();

        var pending = server.Client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"fake-model","messages":[{"role":"user","content":"Hi"}]}""", System.Text.Encoding.UTF8, "application/json"),
            cancel.Token);
        await engine.FirstTokenSent.Task.WaitAsync(Patience);
        cancel.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        await engine.Cancelled.Task.WaitAsync(Patience);
    }

    private static async Task<HttpResponseMessage> StartStreamAsync(ServingTestServer server, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent(StreamBody, System.Text.Encoding.UTF8, "application/json"),
        };
        var response = await server.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response;
    }

    /// <summary>The slot is freed when the server finishes the aborted response, just after the engine saw the cancel.</summary>
    private static async Task<HttpResponseMessage> SendWhenSlotFreeAsync(ServingTestServer server)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var response = await server.PostAsync("/v1/completions", """{"model":"fake-model","prompt":"Hi","max_tokens":1}""");
            if (response.StatusCode != HttpStatusCode.TooManyRequests || DateTime.UtcNow > deadline)
                return response;
            response.Dispose();
            await Task.Delay(20);
        }
    }
}
