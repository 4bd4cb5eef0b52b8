using System.Net.Sockets;
using System.Text.Json.Serialization;

namespace OServe.Engine.Benchmarking;

/// <summary>Turns transport exceptions into the one-line messages a user reads.</summary>
public static class HttpFailure
{
    /// <summary>
    /// True when no connection could be made (refused, unresolvable, unroutable); a connection reset
    /// after the request went out is a broken stream, not this.
    /// </summary>
    public static bool IsConnectFailure(Exception e) =>
        e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError };

    public static string Describe(Exception e, Uri url)
    {
        if (FindSocketException(e) is { } socket) return $"cannot connect to {url}: {SocketText(socket)}";
        if (e is HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError })
            return $"cannot connect to {url}: host not found";
        return $"cannot connect to {url}: {e.Message}";
    }

    private static SocketException? FindSocketException(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is SocketException s) return s;
        return null;
    }

    private static string SocketText(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => "host not found",
        SocketError.TimedOut => "connection timed out",
        SocketError.NetworkUnreachable or SocketError.HostUnreachable => "host unreachable",
        _ => e.Message,
    };
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(TokenizeRequest))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;
