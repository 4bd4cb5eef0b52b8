using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting.Server.Features;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>
/// The OpenAI-compatible HTTP server over one <see cref="IInferenceEngine"/>:
/// POST /v1/completions, POST /v1/chat/completions, GET /v1/models[/{id}], POST /tokenize, GET /health, GET /metrics.
/// </summary>
public static class ServerHost
{
    /// <summary>Builds the server; start it with RunAsync/StartAsync on the result.</summary>
    /// <param name="chatTemplate">How chat messages become a prompt; <see cref="PlainChatTemplate"/> when null.</param>
    /// <param name="configure">Last word on the builder (logging, extra services) before it is built.</param>
    /// <param name="engineClock">The engine's clock in seconds, stamped on requests as ArrivalTime; monotonic seconds when null.</param>
    /// <param name="mapEndpoints">Extra endpoints (e.g. /v1/plan of a plan runtime), mapped after the standard ones, behind the same middleware.</param>
    public static WebApplication Build(ServeOptions options, IInferenceEngine engine, IChatTemplate? chatTemplate = null,
        Action<WebApplicationBuilder>? configure = null, Func<double>? engineClock = null, Action<WebApplication>? mapEndpoints = null)
    {
        options.Validate();
        IReadOnlyList<string> modelNames = options.ServedModelNames.Count > 0 ? options.ServedModelNames : [engine.ModelName];
        var time = TimeProvider.System;
        var metrics = new ServingMetrics(engine, modelNames[0]);
        var limits = ServingLimits.For(options, engine);
        var serving = new ServingContext(options, engine, modelNames,
            new RequestParser(engine, modelNames, chatTemplate ?? new PlainChatTemplate(), options.DefaultCompletionMaxTokens, limits),
            new GenerationRunner(engine, metrics, options, time, engineClock ?? GenerationRunner.MonotonicSeconds),
            metrics, time)
        {
            StartedAt = time.GetUtcNow().ToUnixTimeSeconds(),
            Limits = limits,
            Logprobs = new LogprobFormatter(engine),
        };

        // The empty builder reads no appsettings files or environment: the options above are the
        // whole configuration, and no file watchers are left behind by servers built in tests.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "oserve" });
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // A body past the limit is refused from its Content-Length, before a byte of it is read.
            kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBodyBytes;
            kestrel.ConfigureEndpointDefaults(listen => listen.UseOpenAIErrorBodies(limits));
        });
        builder.WebHost.UseUrls(ListenUrl(options));
        builder.Services.AddRoutingCore();
        builder.Services.ConfigureHttpJsonOptions(json => ServingJson.Configure(json.SerializerOptions));
        builder.Services.AddSingleton(serving);
        builder.Logging.AddSimpleConsole(console => console.SingleLine = true);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseMiddleware<ErrorHandlingMiddleware>(limits);
        app.UseStatusCodePages(WriteStatusCodeErrorAsync);
        if (options.ApiKey is { } apiKey)
            app.UseMiddleware<ApiKeyMiddleware>(apiKey, options.IsMetricsOpen);
        app.UseRouting();
        app.MapOpenAIEndpoints();
        app.MapTokenizeEndpoints();
        app.MapGet("/health", () => TypedResults.Ok(new HealthStatus("ok", modelNames[0])));
        app.MapGet("/metrics", () => TypedResults.Text(metrics.Render(), PrometheusText.ContentType));
        mapEndpoints?.Invoke(app);
        return app;
    }

    /// <summary>Builds the server, serves until <paramref name="cancellationToken"/> fires or the host stops.</summary>
    public static async Task RunAsync(ServeOptions options, IInferenceEngine engine, IChatTemplate? chatTemplate = null,
        Action<WebApplicationBuilder>? configure = null, Func<double>? engineClock = null, CancellationToken cancellationToken = default,
        Action<WebApplication>? mapEndpoints = null)
    {
        await using var app = Build(options, engine, chatTemplate, configure, engineClock, mapEndpoints);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            // Port in use, an address this machine does not have, a port it may not open.
            throw new ServerStartException($"--host {options.Host} --port {options.Port}: cannot listen there: {(e.InnerException ?? e).Message}");
        }
        app.Logger.LogInformation("Serving {Model} at {Address}", engine.ModelName, BoundAddress(app));
        await app.WaitForShutdownAsync(cancellationToken);
    }

    /// <summary>The address the started server listens on, with the real port when port 0 was asked.</summary>
    public static Uri BoundAddress(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        return new Uri(addresses.FirstOrDefault() ?? throw new InvalidOperationException("The server is not started."));
    }

    private static string ListenUrl(ServeOptions options)
    {
        var host = IPAddress.TryParse(options.Host, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{options.Host}]"
            : options.Host;
        return $"http://{host}:{options.Port}";
    }

    /// <summary>Unknown routes (404) and wrong methods (405) answer in OpenAI's error shape too.</summary>
    private static Task WriteStatusCodeErrorAsync(StatusCodeContext context)
    {
        var http = context.HttpContext;
        var status = http.Response.StatusCode;
        var what = $"{http.Request.Method} {http.Request.Path}";
        var message = status switch
        {
            StatusCodes.Status404NotFound => $"No route {what}; see GET /v1/models, GET /v1/models/{{id}}, POST /v1/completions, POST /v1/chat/completions, POST /tokenize, GET /health, GET /metrics.",
            StatusCodes.Status405MethodNotAllowed => $"Method not allowed: {what}.",
            _ => $"Request {what} failed with status {status}.",
        };
        var type = status >= 500 ? "server_error" : "invalid_request_error";
        return new OpenAIErrorResult(status, new ErrorResponse(new ErrorDetail(message, type, null, null))).ExecuteAsync(http);
    }
}

/// <summary>The server could not start listening (the message names the address and why); the CLI exits 2 with it.</summary>
public sealed class ServerStartException(string message) : Exception(message);
