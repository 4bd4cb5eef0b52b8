using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;

namespace OServe.Engine.Serving;

/// <summary>POST /v1/completions, POST /v1/chat/completions, GET /v1/models and GET /v1/models/{id}.</summary>
public static class OpenAIEndpoints
{
    public static IEndpointRouteBuilder MapOpenAIEndpoints(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapPost("/completions", CompletionsAsync);
        v1.MapPost("/chat/completions", ChatCompletionsAsync);
        v1.MapGet("/models", Models);
        // Catch-all: served names may hold slashes ("meta-llama/Llama-2-7b").
        v1.MapGet("/models/{**id}", Model);
        return app;
    }

    public static Task<IResult> CompletionsAsync(HttpContext http, ServingContext serving, ILogger<ServingContext> logger) =>
        ServeAsync(http, serving, "cmpl", (body, token) => serving.Parser.ParseCompletion(body, token),
            (request, generations) => request.Stream
                ? Task.FromResult<IResult>(new SseStreamResult(CompletionResponses.StreamAsync(request, generations, serving.Logprobs), logger))
                : CompletionResponses.CollectAsync(request, generations, serving.Logprobs));

    public static Task<IResult> ChatCompletionsAsync(HttpContext http, ServingContext serving, ILogger<ServingContext> logger) =>
        ServeAsync(http, serving, "chatcmpl", (body, token) => serving.Parser.ParseChat(body, token),
            (request, generations) => request.Stream
                ? Task.FromResult<IResult>(new SseStreamResult(ChatResponses.StreamAsync(request, generations, serving.Logprobs), logger))
                : ChatResponses.CollectAsync(request, generations, serving.Logprobs));

    public static Ok<ModelList> Models(ServingContext serving) =>
        TypedResults.Ok(new ModelList([.. serving.ModelNames.Select(name => Card(serving, name))]));

    public static Results<Ok<ModelCard>, OpenAIErrorResult> Model(string id, ServingContext serving) =>
        serving.ModelNames.Contains(id, StringComparer.Ordinal)
            ? TypedResults.Ok(Card(serving, id))
            : OpenAIErrorException.UnknownModel(id, serving.ModelNames).ToResult();

    // created is when the server started, the same on every call (clients cache model lists by it).
    private static ModelCard Card(ServingContext serving, string name) => new(name, serving.StartedAt, serving.Engine.MaxModelLength);

    /// <summary>
    /// The shared path of both generation endpoints: the request's scope (client + time budget) owns
    /// the whole exchange; the body is read and parsed under it, the sequences started, and the
    /// response (which may stream long after this returns) disposes them and the scope.
    /// </summary>
    private static async Task<IResult> ServeAsync(HttpContext http, ServingContext serving, string idPrefix,
        Func<JsonElement, CancellationToken, ParsedRequest> parse, Func<ParsedRequest, IReadOnlyList<ActiveGeneration>, Task<IResult>> respond)
    {
        var arrival = serving.Time.GetTimestamp();
        var scope = new RequestScope(http.RequestAborted, serving.Options.RequestTimeout);
        http.Response.RegisterForDispose(scope);
        try
        {
            var body = await RequestBody.ReadJsonAsync(http, scope.Token);
            var request = scope.Run(() => parse(body, scope.Token));
            var generations = await serving.Runner.StartAsync(request, idPrefix, arrival, scope);
            // Disposed when the response ends, also when the client went away mid-stream, which ends the engine's requests.
            foreach (var generation in generations)
                http.Response.RegisterForDisposeAsync(generation);
            return await respond(request, generations);
        }
        catch (OpenAIErrorException e)
        {
            return e.ToResult();
        }
        catch (OperationCanceledException) when (scope.IsTimedOut)
        {
            return scope.TimedOut().ToResult();
        }
    }
}
