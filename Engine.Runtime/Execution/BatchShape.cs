using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Execution;

/// <summary>
/// The totals of one engine step that its time depends on, in the cost model's terms. A chunk of
/// one token after position 0 is a decode; any other chunk is (part of) a prefill, which attends to
/// every earlier position of its sequence. The simulator's step time and <c>oserve profile</c>'s fit
/// both read a step through this one definition.
/// </summary>
public readonly record struct BatchShape(double PrefillTokens, double NumPrefills, double AttentionPairs, double NumDecodes, double DecodeContextTokens)
{
    public static BatchShape Of(SchedulerOutput output)
    {
        double prefillTokens = 0, numPrefills = 0, attentionPairs = 0, numDecodes = 0, decodeContext = 0;
        var chunks = output.Chunks;
        for (int i = 0; i < chunks.Length; i++)
        {
            int n = chunks[i].NumTokens, start = chunks[i].StartPosition;
            if (n == 1 && start > 0)
            {
                numDecodes++;
                decodeContext += start + 1;
            }
            else
            {
                prefillTokens += n;
                numPrefills++;
                // Chunk [start, start + n) attends to every earlier position: n * (start + n / 2) pairs.
                attentionPairs += n * (start + n / 2.0);
            }
        }
        return new BatchShape(prefillTokens, numPrefills, attentionPairs, numDecodes, decodeContext);
    }

    /// <summary>A step of <paramref name="numPrefills"/> fresh prompts of <paramref name="promptTokens"/> each and <paramref name="numDecodes"/> decodes at <paramref name="context"/>.</summary>
    public static BatchShape Of(int numPrefills, int promptTokens, int numDecodes, int context) =>
        new((double)numPrefills * promptTokens, numPrefills, numPrefills * promptTokens * (promptTokens / 2.0), numDecodes, (double)numDecodes * context);

    /// <summary>The same totals in the planner's terms (<see cref="StepTimeModel"/>).</summary>
    public StepShape ToStep() => new(PrefillTokens, NumPrefills, AttentionPairs, NumDecodes, DecodeContextTokens);

    public override string ToString() =>
        $"prefill {PrefillTokens:0} tokens in {NumPrefills:0} chunks, {NumDecodes:0} decodes over {DecodeContextTokens:0} context tokens";
}
