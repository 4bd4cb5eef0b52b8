using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace OServe.Engine.Tests.Benchmarking;

/// <summary>How the fake server answers its n-th completion request (0-based, in arrival order).</summary>
public enum FakeBehavior { Stream, Http500, BreakAfterTwoChunks, NoDone, NoUsage, Stall, ErrorEvent }

/// <summary>What the fake server saw in one completion request.</summary>
public sealed record SeenRequest(string Prompt, int MaxTokens, bool IgnoreEos, bool Stream, bool IncludeUsage, bool IsChat);

/// <summary>
/// An OpenAI-compatible streaming server on 127.0.0.1 for the load generator's tests: one token per
/// word, a BOS added by /tokenize (as Llama's tokenizer does), max_tokens chunks of one word each,
/// and a chosen failure for chosen requests.
/// </summary>
public sealed class FakeOpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Func<int, FakeBehavior> _behavior;
    private readonly bool _hasTokenize;
    private int _numRequests;
    private int _numInFlight;
    private int _maxInFlight;

    public ConcurrentBag<SeenRequest> Seen { get; } = [];
    public Uri BaseUrl { get; }
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    private FakeOpenAiServer(Func<int, FakeBehavior> behavior, bool hasTokenize, int port)
    {
        _behavior = behavior;
        _hasTokenize = hasTokenize;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, port));
        _app = builder.Build();
        _app.MapPost("/v1/completions", context => Complete(context, isChat: false));
        _app.MapPost("/v1/chat/completions", context => Complete(context, isChat: true));
        if (hasTokenize) _app.MapPost("/tokenize", Tokenize);
        _app.StartAsync().GetAwaiter().GetResult();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        BaseUrl = new Uri(address);
    }

    public static FakeOpenAiServer Start(Func<int, FakeBehavior>? behavior = null, bool hasTokenize = true) =>
        new(behavior ?? (_ => FakeBehavior.Stream), hasTokenize, 0);

    public static int WordCount(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;

    private async Task Tokenize(HttpContext context)
    {
        using var doc = await JsonDocument.ParseAsync(context.Request.Body);
        var prompt = doc.RootElement.GetProperty("prompt").GetString()!;
        var count = WordCount(prompt) + 1;
        await context.Response.WriteAsJsonAsync(new { tokens = Enumerable.Range(1, count).ToArray(), count, max_model_len = 4096 });
    }

    private async Task Complete(HttpContext context, bool isChat)
    {
        var now = Interlocked.Increment(ref _numInFlight);
        for (var seen = _maxInFlight; now > seen; seen = _maxInFlight) Interlocked.CompareExchange(ref _maxInFlight, now, seen);
        try
        {
            using var doc = await JsonDocument.ParseAsync(context.Request.Body);
            var root = doc.RootElement;
            var prompt = isChat ? root.GetProperty("messages")[0].GetProperty("content").GetString()! : root.GetProperty("prompt").GetString()!;
            var maxTokens = root.GetProperty("max_tokens").GetInt32();
            Seen.Add(new SeenRequest(prompt, maxTokens, root.GetProperty("ignore_eos").GetBoolean(), root.GetProperty("stream").GetBoolean(),
                root.GetProperty("stream_options").GetProperty("include_usage").GetBoolean(), isChat));
            var behavior = _behavior(Interlocked.Increment(ref _numRequests) - 1);
            if (behavior == FakeBehavior.Http500)
            {
                context.Response.StatusCode = 500;
                await context.Response.WriteAsync("{\"error\":{\"message\":\"fake overload\"}}");
                return;
            }
            context.Response.ContentType = "text/event-stream";
            for (var i = 0; i < maxTokens; i++)
            {
                if (behavior == FakeBehavior.BreakAfterTwoChunks && i == 2)
                {
                    context.Abort();
                    return;
                }
                if (behavior == FakeBehavior.Stall && i == 1) await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted);
                if (behavior == FakeBehavior.ErrorEvent && i == 1)
                {
                    await Write(context, "data: {\"error\":{\"message\":\"fake engine crash\",\"code\":500}}\n\n");
                    return;
                }
                var chunk = isChat
                    ? $"data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" w{i}\"}}}}]}}\n\n"
                    : $"data: {{\"choices\":[{{\"index\":0,\"text\":\" w{i}\"}}]}}\n\n";
                await Write(context, chunk);
            }
            if (behavior != FakeBehavior.NoUsage)
                await Write(context, string.Create(CultureInfo.InvariantCulture,
                    $"data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{WordCount(prompt) + 1},\"completion_tokens\":{maxTokens}}}}}\n\n"));
            if (behavior != FakeBehavior.NoDone) await Write(context, "data: [DONE]\n\n");
        }
        finally
        {
            Interlocked.Decrement(ref _numInFlight);
        }
    }

    private static async Task Write(HttpContext context, string text)
    {
        await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
