using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OServe.Engine.Serving;

namespace OServe.Engine.Tests.Serving;

/// <summary>The real server (Kestrel on 127.0.0.1, a free port) over a fake engine, one per test.</summary>
public sealed class ServingTestServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ServingTestServer(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
        Client = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(15) };
    }

    public Uri BaseAddress { get; }
    public Uri V1 => new(BaseAddress, "/v1");
    public HttpClient Client { get; }

    public static async Task<ServingTestServer> StartAsync(FakeEngine engine, ServeOptions? options = null)
    {
        options = (options ?? new ServeOptions()) with { Host = "127.0.0.1", Port = 0 };
        var app = ServerHost.Build(options, engine, configure: builder =>
        {
            builder.Logging.ClearProviders();
            // A test that fails with a request still blocked in the engine should not wait 30 s to stop.
            builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(1));
        });
        await app.StartAsync();
        return new ServingTestServer(app, ServerHost.BoundAddress(app));
    }

    public Task<HttpResponseMessage> PostAsync(string path, string json, string? apiKey = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return Client.SendAsync(request);
    }

    public static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
