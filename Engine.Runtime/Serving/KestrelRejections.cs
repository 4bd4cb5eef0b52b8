using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;

namespace OServe.Engine.Serving;

/// <summary>
/// Kestrel refuses some requests itself, before any middleware runs: a request line too long
/// (414), headers too large (431), slow headers (408), bad framing or syntax (400), an unknown
/// HTTP version (505), and it answers them with an empty body that no option can fill. This
/// connection middleware sits between Kestrel and the socket and gives those answers OpenAI's
/// error JSON. It recognises them by their shape: a 4xx/5xx head flushed on its own with
/// "Content-Length: 0" and "Connection: close", which the application's own responses never have
/// (its errors all carry a body). Kestrel's 5xx answers to malformed requests become 400: the
/// client sent them, the server did not fail.
/// </summary>
public static class KestrelRejections
{
    public static IConnectionBuilder UseOpenAIErrorBodies(this IConnectionBuilder connections, ServingLimits limits) =>
        connections.Use(next => connection =>
        {
            var transport = connection.Transport;
            connection.Transport = new Pipe(transport.Input, new RejectionBodyWriter(transport.Output, limits));
            return next(connection);
        });

    private sealed class Pipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    /// <summary>Buffers what Kestrel writes until it flushes, then passes it on, rewritten when it is a bodiless rejection.</summary>
    private sealed class RejectionBodyWriter(PipeWriter inner, ServingLimits limits) : PipeWriter
    {
        private const int KeptCapacity = 64 * 1024;
        private ArrayBufferWriter<byte> _pending = new(4096);

        public override void Advance(int bytes) => _pending.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => _pending.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => _pending.GetSpan(sizeHint);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override bool CanGetUnflushedBytes => true;
        public override long UnflushedBytes => _pending.WrittenCount + (inner.CanGetUnflushedBytes ? inner.UnflushedBytes : 0);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            Commit();
            return inner.FlushAsync(cancellationToken);
        }

        public override void Complete(Exception? exception = null)
        {
            Commit();
            inner.Complete(exception);
        }

        public override ValueTask CompleteAsync(Exception? exception = null)
        {
            Commit();
            return inner.CompleteAsync(exception);
        }

        private void Commit()
        {
            if (_pending.WrittenCount == 0)
                return;
            var written = _pending.WrittenSpan;
            if (Rewrite(written, limits) is { } replaced)
                inner.Write(replaced);
            else
                inner.Write(written);
            // A long stream may have grown the buffer; do not keep a large one per idle connection.
            if (_pending.Capacity > KeptCapacity)
                _pending = new ArrayBufferWriter<byte>(4096);
            else
                _pending.ResetWrittenCount();
        }
    }

    /// <summary>The response with an OpenAI error body, or null when <paramref name="data"/> is not a bodiless rejection.</summary>
    internal static byte[]? Rewrite(ReadOnlySpan<byte> data, ServingLimits limits)
    {
        if (data.Length < 16 || data.Length > 4096 || !(data.StartsWith("HTTP/1.1 "u8) || data.StartsWith("HTTP/1.0 "u8)))
            return null;
        int end = data.IndexOf("\r\n\r\n"u8);
        if (end < 0 || end + 4 != data.Length || !int.TryParse(Encoding.ASCII.GetString(data.Slice(9, 3)), out int status) || status < 400)
            return null;
        var head = Encoding.ASCII.GetString(data[..(end + 2)]);
        var lines = head.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).ToList();
        bool isEmpty = lines.Any(l => l.Equals("Content-Length: 0", StringComparison.OrdinalIgnoreCase));
        bool closes = lines.Any(l => l.StartsWith("Connection:", StringComparison.OrdinalIgnoreCase) && l.Contains("close", StringComparison.OrdinalIgnoreCase));
        if (!isEmpty || !closes)
            return null;

        int answered = status >= 500 ? StatusCodes.Status400BadRequest : status;
        var body = JsonSerializer.SerializeToUtf8Bytes(
            new ErrorResponse(new ErrorDetail(Message(status, limits), "invalid_request_error", null, null)), ServingJson.Options);
        var rewritten = new StringBuilder();
        rewritten.Append(head[..9]).Append(answered).Append(' ').Append(ReasonPhrase(answered)).Append("\r\n");
        foreach (var line in lines.Skip(1))
            if (!line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase) && !line.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase))
                rewritten.Append(line).Append("\r\n");
        rewritten.Append("Content-Type: application/json\r\nContent-Length: ").Append(body.Length).Append("\r\n\r\n");
        return [.. Encoding.ASCII.GetBytes(rewritten.ToString()), .. body];
    }

    private static string Message(int status, ServingLimits limits) => status switch
    {
        StatusCodes.Status408RequestTimeout => "request: the headers or body did not arrive in time",
        StatusCodes.Status413PayloadTooLarge => $"request body: larger than this server's limit of {limits.MaxRequestBodyBytes} bytes",
        StatusCodes.Status414UriTooLong => "request: the request line (method, path and query) is too long",
        StatusCodes.Status431RequestHeaderFieldsTooLarge => "request: the headers are too large",
        StatusCodes.Status505HttpVersionNotsupported => "request: unsupported HTTP version; send HTTP/1.1",
        StatusCodes.Status501NotImplemented => "request: unsupported method or transfer coding",
        _ => "request: malformed HTTP (the request line, a header or the body's framing is invalid)",
    };

    private static string ReasonPhrase(int status) =>
        Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "Error";
}
