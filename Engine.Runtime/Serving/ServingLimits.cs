using System.Text;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>
/// Bounds on the work one request can ask for, fixed when the server is built. A prompt of B
/// bytes needs at least B / MaxTokenBytes tokens, so one longer than MaxModelLength x
/// MaxTokenBytes can never fit the context: it is refused by its byte count, before tokenizing.
/// The request body may hold that prompt in JSON's worst escaping (6 bytes per byte, \u00XX) or a
/// context-long list of token ids, plus room for the other fields; Kestrel refuses a longer body
/// from its Content-Length, before reading it.
/// </summary>
public sealed record ServingLimits(long MaxPromptBytes, long MaxRequestBodyBytes, int MaxModelLength, int? MaxTokenBytes, bool IsDerived)
{
    /// <summary>Bytes per token assumed for an engine that cannot say (generous: real vocabularies stay well under it).</summary>
    public const int FallbackMaxTokenBytes = 64;

    private const long BodySlackBytes = 1 << 20;

    public static ServingLimits For(ServeOptions options, IInferenceEngine engine)
    {
        long context = engine.MaxModelLength;
        long prompt = options.MaxPromptBytes ?? context * (engine.MaxTokenBytes ?? FallbackMaxTokenBytes);
        // "2147483647, " is 12 bytes: a list of token ids the length of the context fits in 16 per id.
        long body = BodySlackBytes + Math.Max(6 * prompt, 16 * context);
        return new ServingLimits(prompt, body, engine.MaxModelLength, engine.MaxTokenBytes, options.MaxPromptBytes is null);
    }

    /// <summary>Refuses a prompt over <see cref="MaxPromptBytes"/>; <paramref name="field"/> is the OpenAI field named in the 400.</summary>
    public void CheckPrompt(string text, string field)
    {
        // A UTF-16 char is at most 3 UTF-8 bytes, so a short string needs no counting.
        if (text.Length * 3L <= MaxPromptBytes)
            return;
        long bytes = Encoding.UTF8.GetByteCount(text);
        if (bytes > MaxPromptBytes)
            throw OpenAIErrorException.BadField(field, $"is {bytes} bytes, over this server's limit of {MaxPromptBytes} bytes {Why()}");
    }

    public string Why() => !IsDerived ? "(--max-prompt-bytes)"
        : $"(no token of this model stands for more than {MaxTokenBytes ?? FallbackMaxTokenBytes} bytes, so a longer prompt cannot fit its maximum context length of {MaxModelLength} tokens)";
}
