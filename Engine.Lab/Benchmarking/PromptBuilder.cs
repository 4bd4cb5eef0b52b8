using System.Text;

namespace OServe.Engine.Benchmarking;

/// <summary>Prompts of the asked lengths (in the server's tokens, special tokens included) and how many missed.</summary>
public sealed record PromptSet(string[] Prompts, int[] PromptLens, int NumMismatched, int NumClamped);

/// <summary>
/// Builds prompts of exact token lengths from random common words. Both BPE families in use
/// (GPT-2-style byte BPE and SentencePiece) split on spaces before merging, so a text of words
/// costs the sum of each word's cost; the builder measures every word's cost once with the
/// tokenizer, fills a prompt to the target, then re-tokenizes it and repairs it with one-token
/// words. Prompts that still miss after the repairs are counted, never silently passed off.
/// </summary>
public sealed class PromptBuilder
{
    private const int MaxRepairs = 4;

    private static readonly string[] CandidateWords =
    [
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
        "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
        "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would",
        "who", "so", "no", "she", "other", "its", "may", "these", "what", "them", "than", "some", "him", "time",
        "into", "only", "do", "could", "new", "about", "two", "first", "then", "also", "after", "any", "like",
        "should", "made", "people", "many", "over", "such", "very", "must", "years", "where", "most", "way",
        "even", "work", "well", "back", "good", "day", "long", "little", "great", "world", "life", "old", "man",
        "water", "house", "small", "light", "hand", "place", "name", "tree", "sun", "dog", "cat", "bird", "fish",
        "red", "blue", "green", "big", "happy", "play", "run", "see", "look", "find", "go", "come", "say", "ask",
        "a", "i", "o", "x",
    ];

    private readonly IBenchTokenizer _tokenizer;
    private readonly string[] _words;
    private readonly int[] _firstCost;
    private readonly int[] _midCost;
    private readonly int[] _oneTokenFirst;
    private readonly int[] _oneTokenMid;

    private PromptBuilder(IBenchTokenizer tokenizer, int numSpecial, string[] words, int[] firstCost, int[] midCost)
    {
        _tokenizer = tokenizer;
        NumSpecialTokens = numSpecial;
        _words = words;
        _firstCost = firstCost;
        _midCost = midCost;
        _oneTokenFirst = Enumerable.Range(0, words.Length).Where(i => firstCost[i] == 1).ToArray();
        _oneTokenMid = Enumerable.Range(0, words.Length).Where(i => midCost[i] == 1).ToArray();
    }

    /// <summary>Tokens the server adds to every prompt (a BOS, say); a prompt is never shorter than this plus one.</summary>
    public int NumSpecialTokens { get; }

    public static async Task<PromptBuilder> CreateAsync(IBenchTokenizer tokenizer, CancellationToken cancellationToken)
    {
        var alone = new int[CandidateWords.Length];
        var twice = new int[CandidateWords.Length];
        await Parallel.ForAsync(0, CandidateWords.Length, Parallelism(tokenizer, cancellationToken), async (i, ct) =>
        {
            alone[i] = await tokenizer.CountAsync(CandidateWords[i], ct);
            twice[i] = await tokenizer.CountAsync(CandidateWords[i] + " " + CandidateWords[i], ct);
        });
        // alone = special + first, twice = special + first + mid; for the many words whose first and
        // mid forms cost the same, 2·alone − twice is the special-token count: take the most common value.
        var numSpecial = Math.Max(0, Enumerable.Range(0, alone.Length).Select(i => 2 * alone[i] - twice[i])
            .GroupBy(s => s).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key);
        var keep = Enumerable.Range(0, alone.Length).Where(i => alone[i] - numSpecial >= 1 && twice[i] - alone[i] >= 1).ToArray();
        var builder = new PromptBuilder(tokenizer, numSpecial, keep.Select(i => CandidateWords[i]).ToArray(),
            keep.Select(i => alone[i] - numSpecial).ToArray(), keep.Select(i => twice[i] - alone[i]).ToArray());
        if (builder._oneTokenFirst.Length == 0 || builder._oneTokenMid.Length == 0)
            throw new BenchInputException($"--tokenizer: tokenizer {tokenizer.Id} has no one-token English word; cannot build prompts of exact lengths");
        return builder;
    }

    /// <summary>One prompt per length; the same seed gives the same prompts whatever the parallelism.</summary>
    public async Task<PromptSet> BuildAsync(IReadOnlyList<int> lengths, int seed, CancellationToken cancellationToken)
    {
        var prompts = new string[lengths.Count];
        var lens = new int[lengths.Count];
        var numMismatched = 0;
        var numClamped = 0;
        await Parallel.ForAsync(0, lengths.Count, Parallelism(_tokenizer, cancellationToken), async (i, ct) =>
        {
            var target = lengths[i];
            if (target < NumSpecialTokens + 1)
            {
                target = NumSpecialTokens + 1;
                Interlocked.Increment(ref numClamped);
            }
            var (text, count) = await BuildOneAsync(target, new Random(unchecked(seed * 1_000_003 + i)), ct);
            prompts[i] = text;
            lens[i] = count;
            if (count != target) Interlocked.Increment(ref numMismatched);
        });
        return new PromptSet(prompts, lens, numMismatched, numClamped);
    }

    private async Task<(string Text, int Count)> BuildOneAsync(int target, Random rng, CancellationToken ct)
    {
        var words = new List<int>(target);
        var remaining = target - NumSpecialTokens;
        var first = rng.Next(_words.Length);
        if (_firstCost[first] > remaining) first = _oneTokenFirst[rng.Next(_oneTokenFirst.Length)];
        words.Add(first);
        remaining -= _firstCost[first];
        AppendMid(words, remaining, rng);

        var text = Join(words);
        var count = await _tokenizer.CountAsync(text, ct);
        for (var repair = 0; repair < MaxRepairs && count != target; repair++)
        {
            var excess = count - target;
            // Drop trailing words until at or under the target (by their measured cost), then refill with one-token words.
            while (excess > 0 && words.Count > 1)
            {
                excess -= _midCost[words[^1]];
                words.RemoveAt(words.Count - 1);
            }
            for (var deficit = -excess; deficit > 0; deficit--) words.Add(_oneTokenMid[rng.Next(_oneTokenMid.Length)]);
            text = Join(words);
            count = await _tokenizer.CountAsync(text, ct);
        }
        return (text, count);
    }

    private void AppendMid(List<int> words, int remaining, Random rng)
    {
        while (remaining > 0)
        {
            var w = rng.Next(_words.Length);
            if (_midCost[w] > remaining) w = _oneTokenMid[rng.Next(_oneTokenMid.Length)];
            words.Add(w);
            remaining -= _midCost[w];
        }
    }

    private string Join(List<int> words)
    {
        var length = words.Count;
        foreach (var w in words) length += _words[w].Length;
        var sb = new StringBuilder(length);
        for (var i = 0; i < words.Count; i++)
        {
            if (i > 0) sb.Append(' ');
            sb.Append(_words[words[i]]);
        }
        return sb.ToString();
    }

    private static ParallelOptions Parallelism(IBenchTokenizer tokenizer, CancellationToken ct) => new()
    {
        CancellationToken = ct,
        // Local counting is CPU-bound; the server's endpoint is I/O and takes a few requests at once.
        MaxDegreeOfParallelism = tokenizer is ServerBenchTokenizer ? 16 : Environment.ProcessorCount,
    };
}
