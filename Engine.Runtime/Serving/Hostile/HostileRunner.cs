using System.Text.Json;

namespace OServe.Engine.Serving.Hostile;

/// <summary>What one hostile case got back, and whether the server still answered GET /health afterwards.</summary>
public sealed record HostileResult(HostileCase Case, RawResponse Response, bool IsAlive, string? Problem)
{
    public bool IsOk => Problem is null;
}

/// <summary>Runs hostile cases one after another against a live server and checks each answer.</summary>
public static class HostileRunner
{
    public static async Task<IReadOnlyList<HostileResult>> RunAsync(Uri baseAddress, IEnumerable<HostileCase> cases, TimeSpan timeout)
    {
        var results = new List<HostileResult>();
        foreach (var c in cases)
            results.Add(await RunAsync(baseAddress, c, timeout));
        return results;
    }

    public static async Task<HostileResult> RunAsync(Uri baseAddress, HostileCase c, TimeSpan timeout)
    {
        RawResponse response;
        try
        {
            response = await RawHttp.SendAsync(baseAddress, c.Request, timeout);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            response = new RawResponse(0, new Dictionary<string, string>(), System.Text.Encoding.UTF8.GetBytes(e.Message));
        }
        bool alive = await IsAliveAsync(baseAddress, timeout);
        return new HostileResult(c, response, alive, Check(c, response, alive));
    }

    /// <summary>Null when the answer is what the case expects: its status, OpenAI's error shape, the field named, and a server still up.</summary>
    public static string? Check(HostileCase c, RawResponse response, bool isAlive)
    {
        if (!isAlive)
            return "the server stopped answering GET /health";
        if (response.Status != c.ExpectedStatus)
            return $"status {response.Status}, expected {c.ExpectedStatus}: {Shorten(response.Text)}";
        if (!response.Headers.TryGetValue("content-type", out var type) || !type.StartsWith("application/json", StringComparison.Ordinal))
            return $"content-type '{type}', expected application/json";
        try
        {
            using var document = JsonDocument.Parse(response.Body);
            if (!document.RootElement.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
                return $"no error object: {Shorten(response.Text)}";
            foreach (var field in new[] { "message", "type", "param", "code" })
                if (!error.TryGetProperty(field, out _))
                    return $"error.{field} is missing: {Shorten(response.Text)}";
            if (error.GetProperty("message").ValueKind != JsonValueKind.String || error.GetProperty("type").ValueKind != JsonValueKind.String)
                return $"error.message and error.type must be strings: {Shorten(response.Text)}";
            var param = error.GetProperty("param");
            var actual = param.ValueKind == JsonValueKind.String ? param.GetString() : null;
            if (actual != c.ExpectedParam)
                return $"error.param '{actual}', expected '{c.ExpectedParam}': {Shorten(response.Text)}";
        }
        catch (JsonException e)
        {
            return $"the body is not JSON ({e.Message}): {Shorten(response.Text)}";
        }
        return null;
    }

    private static async Task<bool> IsAliveAsync(Uri baseAddress, TimeSpan timeout)
    {
        try
        {
            var health = await RawHttp.SendAsync(baseAddress, HostileCases.Get("/health", null), timeout);
            return health.Status == 200;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static string Shorten(string text) => text.Length <= 300 ? text : text[..300] + "...";
}
