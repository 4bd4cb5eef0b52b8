using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;

namespace OServe.Engine.Serving;

/// <summary>
/// OpenAI's streaming framing: one "data: {json}\n\n" event per chunk, flushed at once, then
/// "data: [DONE]\n\n". An engine failure after the headers went out cannot change the status, so it is
/// sent as a final data event holding an OpenAI error (as vLLM does) before [DONE], and so is a
/// request that ran past its time budget. A client that
/// leaves cancels the request; nothing more is written.
/// </summary>
public sealed class SseStreamResult(IAsyncEnumerable<object> chunks, ILogger logger) : IResult, IStatusCodeHttpResult, IContentTypeHttpResult
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] Done = "data: [DONE]\n\n"u8.ToArray();

    public int? StatusCode => StatusCodes.Status200OK;
    public string ContentType => "text/event-stream";

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        var response = httpContext.Response;
        var aborted = httpContext.RequestAborted;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = ContentType;
        response.Headers.CacheControl = "no-cache";
        httpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var body = response.Body;
        try
        {
            await foreach (var chunk in chunks.WithCancellation(aborted))
                await WriteEventAsync(body, chunk, aborted);
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            return;
        }
        catch (OpenAIErrorException e)
        {
            // A refusal known only mid-stream (the request's time budget ran out): its error, as an event.
            await WriteEventAsync(body, e.ToResult().Body, aborted);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Generation failed after the stream started");
            await WriteEventAsync(body, OpenAIErrorResult.Internal().Body, aborted);
        }
        await body.WriteAsync(Done, aborted);
        await body.FlushAsync(aborted);
    }

    private static async Task WriteEventAsync(Stream body, object chunk, CancellationToken cancellationToken)
    {
        // JSON never contains a raw newline, so one data: line per event is always valid SSE.
        await body.WriteAsync(DataPrefix, cancellationToken);
        await JsonSerializer.SerializeAsync(body, chunk, chunk.GetType(), ServingJson.Options, cancellationToken);
        await body.WriteAsync(EventEnd, cancellationToken);
        await body.FlushAsync(cancellationToken);
    }
}
