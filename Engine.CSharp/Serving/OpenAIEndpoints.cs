using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>POST /v1/completions, POST /v1/chat/completions and GET /v1/models.</summary>
public static class OpenAIEndpoints
{
    public static IEndpointRouteBuilder MapOpenAIEndpoints(this IEndpointRouteBuilder app)
    {
        var v1 = app.MapGroup("/v1");
        v1.MapPost("/completions", CompletionsAsync);
        v1.MapPost("/chat/completions", ChatCompletionsAsync);
        v1.MapGet("/models", Models);
        return app;
    }

    public static async Task<Results<Ok<CompletionResponse>, SseStreamResult, OpenAIErrorResult>> CompletionsAsync(
        HttpContext http, ServingContext serving, ILogger<ServingContext> logger)
    {
        var arrival = serving.Time.GetTimestamp();
        try
        {
            var request = serving.Parser.ParseCompletion(await ReadBodyAsync(http));
            var generation = await StartAsync(http, serving, request, "cmpl", arrival);
            if (request.Stream)
                return new SseStreamResult(CompletionChunksAsync(generation), logger);
            var (text, last) = await CollectAsync(generation);
            return TypedResults.Ok(new CompletionResponse(generation.Id, generation.Created, request.Model,
                [new CompletionChoice(0, text, OpenAIFinishReason.From(last.FinishReason))]) { Usage = Usage(last) });
        }
        catch (OpenAIErrorException e)
        {
            return e.ToResult();
        }
    }

    public static async Task<Results<Ok<ChatCompletionResponse>, SseStreamResult, OpenAIErrorResult>> ChatCompletionsAsync(
        HttpContext http, ServingContext serving, ILogger<ServingContext> logger)
    {
        var arrival = serving.Time.GetTimestamp();
        try
        {
            var request = serving.Parser.ParseChat(await ReadBodyAsync(http));
            var generation = await StartAsync(http, serving, request, "chatcmpl", arrival);
            if (request.Stream)
                return new SseStreamResult(ChatChunksAsync(generation), logger);
            var (text, last) = await CollectAsync(generation);
            return TypedResults.Ok(new ChatCompletionResponse(generation.Id, generation.Created, request.Model,
                [new ChatChoice(0, new ChatMessageBody("assistant", text), OpenAIFinishReason.From(last.FinishReason))], Usage(last)));
        }
        catch (OpenAIErrorException e)
        {
            return e.ToResult();
        }
    }

    public static Ok<ModelList> Models(ServingContext serving)
    {
        var created = serving.Time.GetUtcNow().ToUnixTimeSeconds();
        return TypedResults.Ok(new ModelList([.. serving.ModelNames.Select(name => new ModelCard(name, created, serving.Engine.MaxModelLength))]));
    }

    private static async Task<JsonElement> ReadBodyAsync(HttpContext http)
    {
        try
        {
            using var document = await JsonDocument.ParseAsync(http.Request.Body, default, http.RequestAborted);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw OpenAIErrorException.BadRequest($"request body: not valid JSON ({e.Message})");
        }
    }

    private static async Task<ActiveGeneration> StartAsync(HttpContext http, ServingContext serving, ParsedRequest request, string idPrefix, long arrival)
    {
        var generation = await serving.Runner.StartAsync(request, idPrefix, arrival, http.RequestAborted);
        // The response owns the generation from here: it is disposed when the response ends,
        // also when the client went away mid-stream, which ends the engine's request.
        http.Response.RegisterForDisposeAsync(generation);
        return generation;
    }

    private static async Task<(string Text, GenerationEvent Last)> CollectAsync(ActiveGeneration generation)
    {
        var text = new StringBuilder();
        GenerationEvent? last = null;
        await foreach (var step in generation.ReadAllAsync())
        {
            text.Append(step.TextDelta);
            last = step;
        }
        return (text.ToString(), last!);
    }

    private static async IAsyncEnumerable<object> CompletionChunksAsync(ActiveGeneration generation)
    {
        var (id, created, model) = (generation.Id, generation.Created, generation.Request.Model);
        await foreach (var step in generation.ReadAllAsync())
        {
            // A token that completes no character yet (part of a UTF-8 sequence) has no text to send.
            if (step.TextDelta.Length > 0 || step.IsFinished)
                yield return new CompletionResponse(id, created, model,
                    [new CompletionChoice(0, step.TextDelta, step.IsFinished ? OpenAIFinishReason.From(step.FinishReason) : null)]);
            if (step.IsFinished && generation.Request.IncludeUsage)
                yield return new CompletionResponse(id, created, model, []) { Usage = Usage(step) };
        }
    }

    private static async IAsyncEnumerable<object> ChatChunksAsync(ActiveGeneration generation)
    {
        var (id, created, model) = (generation.Id, generation.Created, generation.Request.Model);
        // OpenAI opens every chat stream with the role, content empty.
        yield return new ChatCompletionChunk(id, created, model, [new ChatChunkChoice(0, new ChatDelta("assistant", ""), null)]);
        await foreach (var step in generation.ReadAllAsync())
        {
            if (step.TextDelta.Length > 0 || step.IsFinished)
                yield return new ChatCompletionChunk(id, created, model,
                    [new ChatChunkChoice(0, new ChatDelta(null, step.TextDelta.Length > 0 ? step.TextDelta : null),
                        step.IsFinished ? OpenAIFinishReason.From(step.FinishReason) : null)]);
            if (step.IsFinished && generation.Request.IncludeUsage)
                yield return new ChatCompletionChunk(id, created, model, []) { Usage = Usage(step) };
        }
    }

    private static UsageInfo Usage(GenerationEvent last) => new(last.NumPromptTokens, last.NumOutputTokens);
}
