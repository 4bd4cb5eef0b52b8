using System.Buffers;
using System.Text;
using OServe.Engine.Benchmarking;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

public sealed class SseParsingTests
{
    private static (SseChunk Chunk, string Text) Parse(string json)
    {
        var text = new ArrayBufferWriter<byte>();
        var chunk = SseChunk.Parse(Encoding.UTF8.GetBytes(json), text);
        return (chunk, Encoding.UTF8.GetString(text.WrittenSpan));
    }

    [Fact]
    public void CompletionTextChatDeltaAndUsageAreRead()
    {
        Assert.Equal((new SseChunk(true, null, null), " hi"), Parse("""{"id":"x","choices":[{"index":0,"text":" hi","logprobs":null,"finish_reason":null}],"usage":null}"""));
        Assert.Equal((new SseChunk(true, null, null), "a\"b\n\u00e9"), Parse("""{"choices":[{"index":0,"delta":{"role":"assistant","content":"a\"b\n\u00e9"}}]}"""));
        Assert.Equal((new SseChunk(false, null, null), ""), Parse("""{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"""));
        Assert.Equal((new SseChunk(false, 17, null), ""), Parse("""{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":17,"total_tokens":22}}"""));
        Assert.Equal((new SseChunk(false, null, "out of memory"), ""), Parse("""{"error":{"message":"out of memory","code":500}}"""));
    }

    [Fact]
    public void NonObjectPayloadIsAJsonError() =>
        Assert.ThrowsAny<System.Text.Json.JsonException>(() => SseChunk.Parse("[1,2]"u8, null));

    [Fact]
    public async Task LinesSplitAcrossReadsAndLongerThanTheBufferComeBackWhole()
    {
        var longLine = "data: " + new string('x', 100);
        var body = $"data: a\r\n\n: comment\n{longLine}\ndata: [DONE]";
        using var reader = new SseLineReader(new TrickleStream(Encoding.UTF8.GetBytes(body), 3), initialSize: 16);
        var lines = new List<string>();
        while (await reader.ReadLineAsync(CancellationToken.None)) lines.Add(Encoding.UTF8.GetString(reader.Line.Span));
        Assert.Equal(["data: a", "", ": comment", longLine, "data: [DONE]"], lines);
    }

    /// <summary>Hands out at most a few bytes per read, as a slow network would.</summary>
    private sealed class TrickleStream(byte[] data, int maxRead) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, maxRead)], cancellationToken);
    }
}
