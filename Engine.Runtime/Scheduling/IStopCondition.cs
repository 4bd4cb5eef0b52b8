using OServe.Engine.Execution;

namespace OServe.Engine.Scheduling;

/// <summary>
/// Decides, after a token was appended, whether a sequence is done. Token-level only: stop
/// strings need the detokenizer and are checked by the engine core.
/// </summary>
public interface IStopCondition
{
    /// <returns><see cref="FinishReason.None"/> to continue.</returns>
    FinishReason Check(Sequence seq);
}

/// <summary>
/// vLLM's token stop rules: the model's end tokens (EOS, and BOS for llama2.c models, unless
/// ignore_eos), stop_token_ids, then max_tokens. A stop token stays in the output tokens; the
/// engine core does not turn it into text.
/// </summary>
public sealed class TokenStopCondition : IStopCondition
{
    private readonly int[] _endTokenIds;

    public TokenStopCondition(int? eosTokenId) : this(eosTokenId is { } eos ? [eos] : []) { }

    public TokenStopCondition(IReadOnlyList<int> endTokenIds) => _endTokenIds = [.. endTokenIds];

    /// <summary>The first end token (EOS), null when the vocabulary has none.</summary>
    public int? EosTokenId => _endTokenIds.Length > 0 ? _endTokenIds[0] : null;

    public IReadOnlyList<int> EndTokenIds => _endTokenIds;

    public FinishReason Check(Sequence seq)
    {
        int last = seq.LastTokenId;
        var sampling = seq.Sampling;
        if (!sampling.IgnoreEos && Array.IndexOf(_endTokenIds, last) >= 0)
            return FinishReason.Stop;
        var stopIds = sampling.StopTokenIds;
        for (int i = 0; i < stopIds.Count; i++)
            if (stopIds[i] == last)
                return FinishReason.Stop;
        return seq.NumOutputTokens >= sampling.MaxTokens ? FinishReason.Length : FinishReason.None;
    }
}
