using System.Buffers;
using System.Text.Json;

namespace OServe.Engine.Benchmarking;

/// <summary>
/// What the load generator needs from one OpenAI streaming chunk, read with a forward-only
/// Utf8JsonReader (no DOM, no strings for the text): whether it carried generated text
/// (choices[0].text for completions, choices[0].delta.content for chat), the usage's
/// completion_tokens when present, and an in-stream error.
/// </summary>
public readonly record struct SseChunk(bool HasText, int? CompletionTokens, string? Error)
{
    /// <summary>Parses one "data:" payload; generated text is appended, unescaped, to <paramref name="text"/> when given.</summary>
    public static SseChunk Parse(ReadOnlySpan<byte> json, IBufferWriter<byte>? text)
    {
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            throw new JsonException("expected a JSON object after 'data:'");
        var hasText = false;
        int? completionTokens = null;
        string? error = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("choices"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartArray) hasText |= ReadChoices(ref reader, text);
                else reader.Skip();
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject) completionTokens = ReadCompletionTokens(ref reader);
                else reader.Skip();
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                error = ReadError(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }
        return new SseChunk(hasText, completionTokens, error);
    }

    private static bool ReadChoices(ref Utf8JsonReader reader, IBufferWriter<byte>? text)
    {
        var hasText = false;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                reader.Skip();
                continue;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("text"u8))
                {
                    reader.Read();
                    hasText |= AppendString(ref reader, text);
                }
                else if (reader.ValueTextEquals("delta"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject) hasText |= ReadDelta(ref reader, text);
                    else reader.Skip();
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        return hasText;
    }

    private static bool ReadDelta(ref Utf8JsonReader reader, IBufferWriter<byte>? text)
    {
        var hasText = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isContent = reader.ValueTextEquals("content"u8);
            reader.Read();
            if (isContent) hasText |= AppendString(ref reader, text);
            else reader.Skip();
        }
        return hasText;
    }

    /// <summary>True for a non-empty string (null and "" are the role-only and final chunks); appends it unescaped.</summary>
    private static bool AppendString(ref Utf8JsonReader reader, IBufferWriter<byte>? text)
    {
        if (reader.TokenType != JsonTokenType.String || reader.ValueSpan.IsEmpty) return false;
        if (text is null) return true;
        if (!reader.ValueIsEscaped)
        {
            text.Write(reader.ValueSpan);
            return true;
        }
        // An unescaped string is never longer than its escaped form.
        var written = reader.CopyString(text.GetSpan(reader.ValueSpan.Length));
        text.Advance(written);
        return true;
    }

    private static int? ReadCompletionTokens(ref Utf8JsonReader reader)
    {
        int? tokens = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isCompletion = reader.ValueTextEquals("completion_tokens"u8);
            reader.Read();
            if (isCompletion && reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var n)) tokens = n;
            else reader.Skip();
        }
        return tokens;
    }

    private static string ReadError(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String) return reader.GetString() ?? "";
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return "error";
        }
        var message = "error";
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isMessage = reader.ValueTextEquals("message"u8);
            reader.Read();
            if (isMessage && reader.TokenType == JsonTokenType.String) message = reader.GetString() ?? message;
            else reader.Skip();
        }
        return message;
    }
}
