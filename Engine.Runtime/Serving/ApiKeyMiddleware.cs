using System.Security.Cryptography;
using System.Text;

namespace OServe.Engine.Serving;

/// <summary>
/// With --api-key, one rule: every route needs "Authorization: Bearer &lt;key&gt;" (vLLM's --api-key),
/// except GET /health for probes, and /metrics when the operator opened it for scrapers
/// (--metrics-without-key). Unknown routes need the key too, so a caller without it learns nothing
/// of what is served. The key comparison takes the same time whatever the input, so timing does
/// not reveal how much of a guess was right.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, string apiKey, bool isMetricsOpen)
{
    private readonly byte[] _expected = Encoding.UTF8.GetBytes("Bearer " + apiKey);

    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path;
        if (path.Equals("/health", StringComparison.Ordinal) || (isMetricsOpen && path.Equals("/metrics", StringComparison.Ordinal)))
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
