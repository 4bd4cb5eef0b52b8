namespace OServe.Engine.Serving;

/// <summary>
/// The last line: an unexpected exception becomes an OpenAI-shaped 500 whose body says nothing of the
/// server's insides (the log gets the details); a request whose client left ends quietly; Kestrel's
/// own refusals (body too large, bad framing) keep their status in OpenAI's shape.
/// </summary>
public sealed class ErrorHandlingMiddleware(RequestDelegate next, ILogger<ErrorHandlingMiddleware> logger, ServingLimits limits)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            logger.LogDebug("Client disconnected from {Path}; its request was cancelled", context.Request.Path);
        }
        catch (BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            var message = e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? $"request body: larger than this server's limit of {limits.MaxRequestBodyBytes} bytes; prompts are limited to {limits.MaxPromptBytes} bytes {limits.Why()}"
                : $"request: {e.Message}";
            await new OpenAIErrorException(e.StatusCode, message, "invalid_request_error").ToResult().ExecuteAsync(context);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            if (context.Response.HasStarted)
                throw;
            context.Response.Clear();
            await OpenAIErrorResult.Internal().ExecuteAsync(context);
        }
    }
}
