using OServe.Engine.Scheduling;

namespace OServe.Engine.Execution;

/// <summary>
/// The executor seam ("one scheduler, two executors"): runs what the scheduler decided and
/// returns next tokens. The real runner does a forward pass and samples; the simulated runner
/// spends cost-model time on a virtual clock. Logits never leave the runner.
/// </summary>
public interface IModelRunner
{
    /// <summary>Marks a chunk that produced no token (not the end of its sequence's known tokens).</summary>
    const int NoToken = -1;

    /// <summary>
    /// Runs one step. For each chunk k with <see cref="ScheduledChunk.SamplesToken"/>, writes the
    /// sampled next token id to <paramref name="sampledTokens"/>[k]; other entries stay
    /// <see cref="NoToken"/>. An output with no chunks carries only
    /// <see cref="SchedulerOutput.FinishedRequestIds"/> for cleanup: no forward pass.
    /// </summary>
    void Execute(SchedulerOutput output, Span<int> sampledTokens);

    /// <summary>
    /// As <see cref="Execute(SchedulerOutput, Span{int})"/>, and fills <paramref name="logprobs"/>
    /// for the chunks whose requests asked for them. A runner without logits (the simulator)
    /// leaves it empty.
    /// </summary>
    void Execute(SchedulerOutput output, Span<int> sampledTokens, StepLogprobs logprobs) => Execute(output, sampledTokens);
}
