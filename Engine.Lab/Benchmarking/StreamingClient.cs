using System.Buffers;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace OServe.Engine.Benchmarking;

/// <summary>
/// Sends one streaming completion (or chat completion) and times it from the SSE stream.
/// One instance, and one HttpClient, serve the whole run.
/// </summary>
public sealed class StreamingClient(HttpClient http, BenchOptions options)
{
    private static readonly MediaTypeHeaderValue JsonType = new("application/json");
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly double TicksToSeconds = 1.0 / Stopwatch.Frequency;

    private readonly Uri _uri = options.EndpointUri;
    private readonly bool _isChat = options.IsChat;

    /// <summary>
    /// One pooled connection per concurrent request (up to the concurrency cap), kept alive for the run;
    /// no proxy, so the benchmark measures the server and not a proxy in between.
    /// </summary>
    public static HttpClient CreateHttpClient(int? maxConcurrency) => new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = maxConcurrency ?? int.MaxValue,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(30),
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public async Task<RequestOutcome> SendAsync(string prompt, int promptLen, int outputLen, CancellationToken cancellationToken)
    {
        var body = RequestBody(prompt, outputLen);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.RequestTimeout);
        var text = options.KeepGeneratedTexts ? new ArrayBufferWriter<byte>(Math.Min(outputLen * 8, 1 << 16)) : null;
        var itl = new List<double>(Math.Min(outputLen, 1 << 14));
        var numChunks = 0;
        int? usageTokens = null;
        var start = Stopwatch.GetTimestamp();
        long first = 0, last = 0;

        RequestOutcome Failed(string error, bool isConnect = false) => new()
        {
            Success = false, PromptLen = promptLen, Error = error, IsConnectFailure = isConnect,
            Ttft = numChunks > 0 ? (first - start) * TicksToSeconds : 0,
            GeneratedText = text is null ? "" : Encoding.UTF8.GetString(text.WrittenSpan),
        };

        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, _uri) { Content = new ReadOnlyMemoryContent(body) };
            request.Content.Headers.ContentType = JsonType;
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                var errorBody = await response.Content.ReadAsStringAsync(timeout.Token);
                return Failed($"HTTP {(int)response.StatusCode} {response.ReasonPhrase}: {OneLine(errorBody)}");
            }
            await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
            using var reader = new SseLineReader(stream);
            var done = false;
            while (await reader.ReadLineAsync(timeout.Token))
            {
                var line = reader.Line.Span;
                if (!line.StartsWith("data:"u8)) continue; // blank separators, comments, event:/id: fields
                var payload = line[5..];
                if (!payload.IsEmpty && payload[0] == ' ') payload = payload[1..];
                var now = Stopwatch.GetTimestamp();
                if (payload.SequenceEqual("[DONE]"u8))
                {
                    last = now;
                    done = true;
                    break;
                }
                var chunk = SseChunk.Parse(payload, text);
                if (chunk.Error is not null) return Failed($"error in stream after {numChunks} chunks: {OneLine(chunk.Error)}");
                if (chunk.CompletionTokens is { } n) usageTokens = n;
                if (!chunk.HasText) continue;
                if (numChunks == 0) first = now;
                else itl.Add((now - last) * TicksToSeconds);
                last = now;
                numChunks++;
            }
            if (!done) return Failed($"stream ended after {numChunks} chunks without 'data: [DONE]'");
            if (numChunks == 0) return Failed("stream ended without any generated text");
            return new RequestOutcome
            {
                Success = true,
                PromptLen = promptLen,
                OutputTokens = usageTokens ?? numChunks,
                OutputTokensFromUsage = usageTokens is not null,
                Ttft = (first - start) * TicksToSeconds,
                Latency = (last - start) * TicksToSeconds,
                Itl = itl.ToArray(),
                GeneratedText = text is null ? "" : Encoding.UTF8.GetString(text.WrittenSpan),
            };
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failed($"timeout after {options.RequestTimeout.TotalSeconds:0.###} s ({numChunks} chunks received)");
        }
        catch (HttpRequestException e) when (numChunks == 0 && HttpFailure.IsConnectFailure(e))
        {
            return Failed(HttpFailure.Describe(e, _uri), isConnect: true);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return Failed($"stream broken after {numChunks} chunks: {OneLine(e.Message)}");
        }
        catch (JsonException e)
        {
            return Failed($"malformed stream chunk after {numChunks} chunks: {OneLine(e.Message)}");
        }
    }

    /// <summary>
    /// max_tokens is the asked output length and ignore_eos keeps servers that honour it from stopping early,
    /// so the output length is exact; include_usage asks for the server's own token count.
    /// </summary>
    private ReadOnlyMemory<byte> RequestBody(string prompt, int outputLen)
    {
        var buffer = new ArrayBufferWriter<byte>(prompt.Length + 256);
        using (var json = new Utf8JsonWriter(buffer, WriterOptions))
        {
            json.WriteStartObject();
            json.WriteString("model"u8, options.Model);
            if (_isChat)
            {
                json.WriteStartArray("messages"u8);
                json.WriteStartObject();
                json.WriteString("role"u8, "user"u8);
                json.WriteString("content"u8, prompt);
                json.WriteEndObject();
                json.WriteEndArray();
            }
            else json.WriteString("prompt"u8, prompt);
            json.WriteNumber("max_tokens"u8, outputLen);
            json.WriteNumber("temperature"u8, 0);
            json.WriteBoolean("ignore_eos"u8, true);
            json.WriteBoolean("stream"u8, true);
            json.WriteStartObject("stream_options"u8);
            json.WriteBoolean("include_usage"u8, true);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.WrittenMemory;
    }

    internal static string OneLine(string text)
    {
        var line = text.ReplaceLineEndings(" ").Trim();
        return line.Length <= 300 ? line : line[..300] + "…";
    }
}
