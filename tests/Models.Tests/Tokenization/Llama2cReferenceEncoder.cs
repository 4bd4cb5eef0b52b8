using System.Text;
using OServe.Models.Tokenization;

namespace OServe.Models.Tests.Tokenization;

/// <summary>
/// The quadratic encoder <see cref="Llama2cTokenizer"/> used before its heap version, kept as the
/// reference: run.c's loop that rescans every adjacent pair per merge and takes the highest score,
/// leftmost on ties. Tests compare the two on many strings; nothing else should use this.
/// </summary>
internal static class Llama2cReferenceEncoder
{
    private const int ByteFallbackOffset = 3;

    public static List<int> Encode(Llama2cTokenizer tok, string text, bool addBos)
    {
        var tokens = new List<int>(text.Length + 2);
        if (addBos) tokens.Add(tok.BosId);
        if (text.Length > 0 && tok.TryLookup(" ", out int dummyPrefix)) tokens.Add(dummyPrefix);

        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in text.EnumerateRunes())
        {
            if (tok.TryLookup(rune.ToString(), out int id))
            {
                tokens.Add(id);
                continue;
            }
            int n = rune.EncodeToUtf8(utf8);
            for (int i = 0; i < n; i++) tokens.Add(utf8[i] + ByteFallbackOffset);
        }

        int start = addBos ? 1 : 0;
        var pairIds = new List<int>(tokens.Count);
        for (int i = 0; i < tokens.Count - 1; i++) pairIds.Add(i < start ? -1 : MergeOf(tok, tokens[i], tokens[i + 1]));
        while (true)
        {
            float bestScore = float.NegativeInfinity;
            int bestIndex = -1;
            for (int i = start; i < pairIds.Count; i++)
            {
                int id = pairIds[i];
                if (id >= 0 && tok.Score(id) > bestScore) (bestScore, bestIndex) = (tok.Score(id), i);
            }
            if (bestIndex < 0) break;
            tokens[bestIndex] = pairIds[bestIndex];
            tokens.RemoveAt(bestIndex + 1);
            pairIds.RemoveAt(bestIndex);
            if (bestIndex < pairIds.Count) pairIds[bestIndex] = MergeOf(tok, tokens[bestIndex], tokens[bestIndex + 1]);
            if (bestIndex - 1 >= start) pairIds[bestIndex - 1] = MergeOf(tok, tokens[bestIndex - 1], tokens[bestIndex]);
        }
        return tokens;
    }

    private static int MergeOf(Llama2cTokenizer tok, int left, int right) =>
        tok.TryLookup(Encoding.UTF8.GetString([.. tok.PieceBytes(left), .. tok.PieceBytes(right)]), out int id) ? id : -1;
}
