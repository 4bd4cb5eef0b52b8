using System.Net.Sockets;
using System.Text;

namespace OServe.Engine.Serving.Hostile;

/// <summary>A response read off the wire: status, headers (lower-case names), body bytes.</summary>
public sealed record RawResponse(int Status, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);
}

/// <summary>
/// Sends bytes that no well-behaved client library would (broken framing, oversized headers,
/// invalid UTF-8) over a plain TCP connection and reads the HTTP/1.1 answer. The request should
/// say "Connection: close"; the answer is read to the end of the connection. Sending and reading
/// run together, so a server that answers before the body is all sent (413) is still heard.
/// </summary>
public static class RawHttp
{
    public static async Task<RawResponse> SendAsync(Uri baseAddress, byte[] request, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        using var client = new TcpClient();
        await client.ConnectAsync(baseAddress.Host, baseAddress.Port, cancel.Token);
        var stream = client.GetStream();
        var send = Task.Run(async () =>
        {
            try
            {
                await stream.WriteAsync(request, cancel.Token);
                await stream.FlushAsync(cancel.Token);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The server answered and closed before taking the whole request: its answer is what counts.
            }
        });
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            while (await stream.ReadAsync(buffer, cancel.Token) is var n and > 0)
                received.Write(buffer, 0, n);
        }
        catch (IOException) when (received.Length > 0)
        {
            // Reset after the answer: keep what arrived.
        }
        client.Close();
        await send;
        return Parse(received.ToArray());
    }

    /// <summary>The first response in <paramref name="data"/>; status 0 when there is none.</summary>
    public static RawResponse Parse(byte[] data)
    {
        var span = data.AsSpan();
        int end = span.IndexOf("\r\n\r\n"u8);
        if (end < 0)
            return new RawResponse(0, new Dictionary<string, string>(), data);
        var lines = Encoding.ASCII.GetString(span[..end]).Split("\r\n");
        var parts = lines[0].Split(' ', 3);
        int status = parts.Length >= 2 && int.TryParse(parts[1], out var code) ? code : 0;
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var line in lines.Skip(1))
            if (line.IndexOf(':') is var colon and > 0)
                headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
        var rest = span[(end + 4)..];
        byte[] body;
        if (headers.TryGetValue("transfer-encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            body = Dechunk(rest);
        else if (headers.TryGetValue("content-length", out var cl) && int.TryParse(cl, out var length))
            body = rest[..Math.Min(length, rest.Length)].ToArray();
        else
            body = rest.ToArray();
        return new RawResponse(status, headers, body);
    }

    private static byte[] Dechunk(ReadOnlySpan<byte> data)
    {
        var body = new MemoryStream();
        while (true)
        {
            int lineEnd = data.IndexOf("\r\n"u8);
            if (lineEnd < 0) break;
            var sizeText = Encoding.ASCII.GetString(data[..lineEnd]).Split(';')[0];
            if (!int.TryParse(sizeText, System.Globalization.NumberStyles.HexNumber, null, out int size) || size == 0) break;
            data = data[(lineEnd + 2)..];
            if (data.Length < size) { body.Write(data); break; }
            body.Write(data[..size]);
            data = data[Math.Min(data.Length, size + 2)..];
        }
        return body.ToArray();
    }
}
