using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;

namespace OServe.Engine.Serving;

/// <summary>
/// vLLM's POST /tokenize ({"model"?, "prompt", "add_special_tokens"?} -> {"tokens","count","max_model_len"}):
/// lets a load generator build prompts of exact token lengths with the served model's tokenizer.
/// </summary>
public static class TokenizeEndpoints
{
    public sealed record TokenizeResponse(IReadOnlyList<int> Tokens, int Count, int MaxModelLen);

    public static IEndpointRouteBuilder MapTokenizeEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/tokenize", TokenizeAsync);
        return app;
    }

    public static async Task<Results<Ok<TokenizeResponse>, OpenAIErrorResult>> TokenizeAsync(HttpContext http, ServingContext serving)
    {
        using var scope = new RequestScope(http.RequestAborted, serving.Options.RequestTimeout);
        try
        {
            var body = await RequestBody.ReadJsonAsync(http, scope.Token);
            if (body.ValueKind != JsonValueKind.Object)
                throw OpenAIErrorException.BadRequest("request body: expected a JSON object");
            if (body.TryGetProperty("model", out var model))
            {
                if (model.ValueKind != JsonValueKind.String)
                    throw OpenAIErrorException.BadField("model", "must be a string");
                if (!serving.ModelNames.Contains(model.GetString()!))
                    throw OpenAIErrorException.UnknownModel(model.GetString()!, serving.ModelNames);
            }
            if (!body.TryGetProperty("prompt", out var prompt) || prompt.ValueKind != JsonValueKind.String)
                throw OpenAIErrorException.BadField("prompt", "is required and must be a string");
            var addSpecial = true;
            if (body.TryGetProperty("add_special_tokens", out var special))
            {
                if (special.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                    throw OpenAIErrorException.BadField("add_special_tokens", "must be true or false");
                addSpecial = special.GetBoolean();
            }
            var text = prompt.GetString()!;
            serving.Limits.CheckPrompt(text, "prompt");
            var tokens = scope.Run(() => serving.Engine.Encode(text, addSpecial, scope.Token));
            return TypedResults.Ok(new TokenizeResponse(tokens, tokens.Count, serving.Engine.MaxModelLength));
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
