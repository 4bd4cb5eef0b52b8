using System.Collections.Concurrent;
using System.Text;
using OServe.Engine.Execution;

namespace OServe.Engine.Serving;

/// <summary>
/// Writes engine logprobs in OpenAI's two shapes. Tokens are named by the text they stand for
/// alone (bytes that are not whole UTF-8 read as U+FFFD; chat also gives the bytes). A -inf
/// logprob is written as -9999 (JSON has no infinity), as vLLM does.
/// </summary>
public sealed class LogprobFormatter(IInferenceEngine engine)
{
    private const float Floor = -9999f;
    private readonly ConcurrentDictionary<int, (string Text, int[] Bytes)> _tokens = new();

    /// <param name="asId">vLLM's return_tokens_as_token_ids: "token_id:ID" instead of the text.</param>
    public string Text(int tokenId, bool asId = false) => asId ? $"token_id:{tokenId}" : Token(tokenId).Text;

    public ChatTokenLogprob Chat(TokenLogprob entry, bool asIds = false)
    {
        var bytes = Token(entry.TokenId).Bytes;
        return new ChatTokenLogprob(Text(entry.TokenId, asIds), Finite(entry.Logprob), bytes,
            [.. entry.Top.Select(t => new ChatTopLogprob(Text(t.TokenId, asIds), Finite(t.Logprob), Token(t.TokenId).Bytes))]);
    }

    /// <summary>Collects one choice's completions logprobs token by token, text offsets counted from <paramref name="startOffset"/>.</summary>
    public CompletionLogprobsBuilder Completion(int startOffset, int numTop, bool asIds = false) => new(this, startOffset, numTop, asIds);

    internal static float Finite(float logprob) => float.IsNaN(logprob) ? Floor : Math.Max(logprob, Floor);

    private (string Text, int[] Bytes) Token(int tokenId) => _tokens.GetOrAdd(tokenId, id =>
    {
        var bytes = engine.TokenBytes(id);
        return (Encoding.UTF8.GetString(bytes), [.. bytes.Select(b => (int)b)]);
    });

    public sealed class CompletionLogprobsBuilder(LogprobFormatter formatter, int startOffset, int numTop, bool asIds)
    {
        private readonly List<string> _tokens = [];
        private readonly List<float?> _logprobs = [];
        private readonly List<IReadOnlyDictionary<string, float>?> _top = [];
        private readonly List<int> _offsets = [];
        private int _offset = startOffset;

        public int Count => _tokens.Count;

        /// <summary>A token; <paramref name="entry"/> null for a prompt's first token, which nothing predicts.</summary>
        public void Add(int tokenId, TokenLogprob? entry)
        {
            var text = formatter.Text(tokenId, asIds);
            _tokens.Add(text);
            _offsets.Add(_offset);
            _offset += text.Length;
            _logprobs.Add(entry is null ? null : Finite(entry.Logprob));
            if (entry is null)
            {
                _top.Add(null);
                return;
            }
            // vLLM's legacy shape: the n most likely tokens, and the chosen one when it is not among them.
            var top = new Dictionary<string, float>(StringComparer.Ordinal);
            foreach (var t in entry.Top.Take(numTop))
                top.TryAdd(formatter.Text(t.TokenId, asIds), Finite(t.Logprob));
            top.TryAdd(text, Finite(entry.Logprob));
            _top.Add(top);
        }

        /// <summary>The entries added since <paramref name="from"/> (a stream chunk's share).</summary>
        public CompletionLogprobs Build(int from = 0) => new(
            _tokens[from..], _logprobs[from..], _top[from..], _offsets[from..]);
    }
}
