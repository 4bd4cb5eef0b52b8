using System.Security.Cryptography;
using System.Text;

namespace OServe.Engine.Serving;

/// <summary>
/// Guards the /v1 routes with "Authorization: Bearer &lt;key&gt;" (vLLM's --api-key). /health and
/// /metrics stay open so probes and scrapers need no secret. The key comparison takes the same time
/// whatever the input, so timing does not reveal how much of a guess was right.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, string apiKey)
{
    private readonly byte[] _expected = Encoding.UTF8.GetBytes("Bearer " + apiKey);

    public async Task InvokeAsync(HttpContext context)
    {
        if (!context.Request.Path.StartsWithSegments("/v1"))
        {
            await next(context);
            return;
        }
        string? header = context.Request.Headers.Authorization;
        if (header is null)
        {
            await Unauthorized("Missing API key: send it as 'Authorization: Bearer <key>'.").ExecuteAsync(context);
            return;
        }
        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header), _expected))
        {
            await Unauthorized("Incorrect API key provided.").ExecuteAsync(context);
            return;
        }
        await next(context);
    }

    private static OpenAIErrorResult Unauthorized(string message) =>
        new OpenAIErrorException(StatusCodes.Status401Unauthorized, message, "invalid_request_error", code: "invalid_api_key").ToResult();
}
