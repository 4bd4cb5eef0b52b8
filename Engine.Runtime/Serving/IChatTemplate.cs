namespace OServe.Engine.Serving;

/// <summary>One chat message after validation; Role is one of system, developer, user, assistant.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// Turns a conversation into the prompt text the model continues. A model that ships its own
/// template (Hugging Face chat_template) plugs in here; the tokenizer then adds BOS as for any prompt.
/// </summary>
public interface IChatTemplate
{
    string Render(IReadOnlyList<ChatMessage> messages);
}

/// <summary>
/// The template for models without one (the built-in model, llama2.c checkpoints): a plain transcript.
/// Each message is one paragraph "Role: content" (system and developer messages as "System:"),
/// separated by a blank line, ending with "Assistant:" to cue the reply. For example
/// <code>
/// System: Be brief.
///
/// User: Hi
///
/// Assistant:
/// </code>
/// A base model may go on to write the next "User:" turn; clients that mind send stop: ["\nUser:"].
/// </summary>
public sealed class PlainChatTemplate : IChatTemplate
{
    public string Render(IReadOnlyList<ChatMessage> messages)
    {
        var parts = messages.Select(m => $"{Label(m.Role)}: {m.Content}").Append("Assistant:");
        return string.Join("\n\n", parts);
    }

    private static string Label(string role) => role switch
    {
        "system" or "developer" => "System",
        "user" => "User",
        "assistant" => "Assistant",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "unvalidated chat role"),
    };
}
