using System.Globalization;
using System.Text.Json;

namespace OServe.Engine.Serving;

/// <summary>The body of every error the server answers: {"error":{"message","type","param","code"}}.</summary>
public sealed record ErrorResponse(ErrorDetail Error);

public sealed record ErrorDetail(string Message, string Type, string? Param, string? Code);

/// <summary>
/// A request the server refuses, with what the client needs to fix it. Thrown by request parsing and
/// admission, caught once per endpoint and answered as an <see cref="OpenAIErrorResult"/>.
/// </summary>
public sealed class OpenAIErrorException(int statusCode, string message, string type, string? param = null, string? code = null)
    : Exception(message)
{
    public int StatusCode { get; } = statusCode;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;
    public TimeSpan? RetryAfter { get; init; }

    /// <summary>A bad or missing request field: 400 naming <paramref name="param"/>, message starting with it.</summary>
    public static OpenAIErrorException BadField(string param, string problem) =>
        new(StatusCodes.Status400BadRequest, $"{param}: {problem}", "invalid_request_error", param);

    public static OpenAIErrorException BadRequest(string message) =>
        new(StatusCodes.Status400BadRequest, message, "invalid_request_error");

    public static OpenAIErrorException UnknownModel(string model, IEnumerable<string> served) =>
        new(StatusCodes.Status404NotFound,
            $"model: '{model}' is not served here; available: {string.Join(", ", served)}",
            "invalid_request_error", "model", "model_not_found");

    public static OpenAIErrorException Overloaded(int statusCode, string message, TimeSpan retryAfter) =>
        new(statusCode, message, statusCode == StatusCodes.Status503ServiceUnavailable ? "service_unavailable" : "rate_limit_error",
            code: "rate_limit_exceeded") { RetryAfter = retryAfter };

    public OpenAIErrorResult ToResult() => new(StatusCode, new ErrorResponse(new ErrorDetail(Message, Type, Param, Code)), RetryAfter);
}

/// <summary>Writes an OpenAI-shaped error with its status (and Retry-After when the server is full).</summary>
public sealed class OpenAIErrorResult(int statusCode, ErrorResponse body, TimeSpan? retryAfter = null) : IResult, IStatusCodeHttpResult
{
    public int? StatusCode => statusCode;
    public ErrorResponse Body => body;

    public static OpenAIErrorResult Internal() =>
        new(StatusCodes.Status500InternalServerError,
            new ErrorResponse(new ErrorDetail("The server failed to handle the request; see the server log.", "server_error", null, null)));

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        response.StatusCode = statusCode;
        if (retryAfter is { } wait)
        {
            // Retry-After takes whole seconds; round up so a client never retries early.
            var seconds = (long)Math.Ceiling(Math.Max(wait.TotalSeconds, 0));
            response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        }
        if (statusCode == StatusCodes.Status401Unauthorized)
            response.Headers.WWWAuthenticate = "Bearer";
        response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(response.Body, body, ServingJson.Options, httpContext.RequestAborted);
    }
}
