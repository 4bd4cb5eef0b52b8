using System.Text;

namespace OServe.Engine.Execution;

/// <summary>
/// A request's output text: incremental detokenization plus stop strings. With stop strings it
/// holds back the last (longest stop - 1) characters until they cannot start a match (vLLM v1's
/// stop buffer), so no client ever sees a part of a stop string; a match truncates the text
/// before the stop string (include_stop_str_in_output = false).
/// </summary>
internal sealed class OutputText(ITokenStreamDecoder decoder, IReadOnlyList<string> stopStrings)
{
    private readonly StringBuilder _text = new();
    private readonly int _holdBack = Math.Max(0, LongestLength(stopStrings) - 1);
    private int _numEmitted;

    /// <param name="decodeToken">False for a stop token (EOS, stop_token_ids): it adds no text.</param>
    /// <param name="isLast">The request ends with this token: flush the decoder and the held-back text.</param>
    /// <param name="stopStringHit">A stop string matched: the text now ends before it and the request must stop.</param>
    /// <returns>Text that became safe to send.</returns>
    public string Add(int tokenId, bool decodeToken, bool isLast, out bool stopStringHit)
    {
        int before = _text.Length;
        if (decodeToken)
            _text.Append(decoder.Add(tokenId));
        if (isLast)
            _text.Append(decoder.Flush());
        stopStringHit = false;
        if (stopStrings.Count > 0 && _text.Length > before)
        {
            int cut = FindStop(before);
            if (cut >= 0)
            {
                _text.Length = cut;
                stopStringHit = true;
            }
        }
        int emitUpTo = isLast || stopStringHit ? _text.Length : Math.Max(_numEmitted, _text.Length - _holdBack);
        if (emitUpTo <= _numEmitted)
            return "";
        string delta = _text.ToString(_numEmitted, emitUpTo - _numEmitted);
        _numEmitted = emitUpTo;
        return delta;
    }

    /// <summary>Text held back when the request ends without a token (abort).</summary>
    public string Flush() => Add(IModelRunner.NoToken, decodeToken: false, isLast: true, out _);

    /// <summary>Earliest start of a stop string that ends in the text added since <paramref name="before"/>; -1 if none.</summary>
    private int FindStop(int before)
    {
        int best = -1;
        foreach (var stop in stopStrings)
        {
            int from = Math.Max(0, before - stop.Length + 1);
            if (_text.Length - from < stop.Length)
                continue;
            int at = _text.ToString(from, _text.Length - from).IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || from + at < best))
                best = from + at;
        }
        return best;
    }

    private static int LongestLength(IReadOnlyList<string> strings)
    {
        int longest = 0;
        foreach (var s in strings)
            longest = Math.Max(longest, s.Length);
        return longest;
    }
}
