using System.Buffers;
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

namespace OServe.Engine.Benchmarking;

/// <summary>
/// The cheapest server that still looks like an OpenAI one to the load generator: streams
/// max_tokens one-word chunks, a usage chunk and [DONE], and counts words for /tokenize. It exists
/// to measure the load generator's own ceiling (<c>oserve bench loadgen</c>); loopback only.
/// </summary>
public sealed class TrivialSseServer : IAsyncDisposable
{
    private static readonly byte[] TextChunk = "data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\" word\",\"finish_reason\":null}]}\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    private readonly WebApplication _app;

    private TrivialSseServer(WebApplication app, Uri baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    /// <summary>
    /// Fires on SIGTERM or Ctrl+C: the web host's console lifetime takes those signals for itself, so
    /// whoever serves until stopped must wait on this as well as on its own token.
    /// </summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>Starts on 127.0.0.1:<paramref name="port"/> (0: any free port).</summary>
    public static async Task<TrivialSseServer> StartAsync(int port, CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, port);
            o.AddServerHeader = false;
        });
        var app = builder.Build();
        app.MapPost("/v1/completions", Complete);
        app.MapPost("/v1/chat/completions", Complete);
        app.MapPost("/tokenize", Tokenize);
        await app.StartAsync(cancellationToken);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TrivialSseServer(app, new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)));
    }

    private static async Task Complete(HttpContext context)
    {
        var body = await ReadBodyAsync(context.Request);
        var maxTokens = 16;
        var reader = new Utf8JsonReader(body);
        while (reader.Read())
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("max_tokens"u8)
                && reader.Read() && reader.TryGetInt32(out var n))
            {
                maxTokens = n;
                break;
            }
        context.Response.ContentType = "text/event-stream";
        var output = context.Response.Body;
        for (var i = 0; i < maxTokens; i++)
        {
            await output.WriteAsync(TextChunk);
            await output.FlushAsync();
        }
        var usage = string.Create(CultureInfo.InvariantCulture,
            $"data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":0,\"completion_tokens\":{maxTokens}}}}}\n\n");
        await output.WriteAsync(Encoding.UTF8.GetBytes(usage));
        await output.WriteAsync(Done);
    }

    /// <summary>One token per space-separated word: enough for the prompt builder to hit exact lengths.</summary>
    private static async Task Tokenize(HttpContext context)
    {
        var body = await ReadBodyAsync(context.Request);
        using var doc = JsonDocument.Parse(body);
        var prompt = doc.RootElement.TryGetProperty("prompt", out var p) ? p.GetString() ?? "" : "";
        var count = prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(string.Create(CultureInfo.InvariantCulture, $"{{\"count\":{count},\"max_model_len\":1000000}}"));
    }

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        while (true)
        {
            var read = await request.Body.ReadAsync(buffer.GetMemory(512));
            if (read == 0) return buffer.WrittenSpan.ToArray();
            buffer.Advance(read);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
