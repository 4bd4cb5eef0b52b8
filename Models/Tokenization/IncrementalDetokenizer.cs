namespace OServe.Models.Tokenization;

/// <summary>
/// Turns a growing token sequence into text deltas for streaming, for any tokenizer. Each step
/// decodes a short window (a few tokens already emitted plus the new ones) and emits what the new
/// tokens added. Emission waits while the window ends in an incomplete UTF-8 sequence (decoded as
/// U+FFFD), so a character split across byte tokens is sent whole. Decoding the window, not each
/// token alone, keeps tokenizers right whose pieces depend on their neighbours (the leading-space
/// rule of SentencePiece). Same scheme as vLLM's detokenize_incrementally.
/// </summary>
public sealed class IncrementalDetokenizer
{
    private const int ContextTokens = 5;
    private readonly ITokenizer tokenizer;
    private readonly List<int> ids;
    private int prefixOffset;
    private int readOffset;

    /// <param name="promptIds">Tokens that precede the generated ones; they give context and are never emitted.</param>
    public IncrementalDetokenizer(ITokenizer tokenizer, IReadOnlyList<int> promptIds)
    {
        this.tokenizer = tokenizer;
        ids = [.. promptIds];
        readOffset = ids.Count;
        prefixOffset = Math.Max(0, readOffset - ContextTokens);
    }

    /// <summary>All text emitted so far.</summary>
    public string Text => text.ToString();

    private readonly System.Text.StringBuilder text = new();

    /// <summary>Adds one generated token; returns the text it completes (possibly empty).</summary>
    public string Add(int tokenId)
    {
        ids.Add(tokenId);
        var window = ids.GetRange(prefixOffset, ids.Count - prefixOffset);
        string prefixText = tokenizer.Decode(ids.GetRange(prefixOffset, readOffset - prefixOffset));
        string newText = tokenizer.Decode(window);
        if (newText.Length <= prefixText.Length || newText.EndsWith('\uFFFD')) return "";
        string delta = newText.StartsWith(prefixText, StringComparison.Ordinal)
            ? newText[prefixText.Length..]
            : newText[CommonPrefixLength(prefixText, newText)..];
        prefixOffset = readOffset;
        readOffset = ids.Count;
        text.Append(delta);
        return delta;
    }

    /// <summary>Emits whatever is held back at the end of the stream (an incomplete character becomes U+FFFD).</summary>
    public string Flush()
    {
        if (readOffset == ids.Count) return "";
        string prefixText = tokenizer.Decode(ids.GetRange(prefixOffset, readOffset - prefixOffset));
        string newText = tokenizer.Decode(ids.GetRange(prefixOffset, ids.Count - prefixOffset));
        string delta = newText.Length > prefixText.Length ? newText[CommonPrefixLength(prefixText, newText)..] : "";
        prefixOffset = readOffset;
        readOffset = ids.Count;
        text.Append(delta);
        return delta;
    }

    private static int CommonPrefixLength(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
