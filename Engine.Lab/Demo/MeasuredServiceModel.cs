using System.Globalization;
using OServe.Planner.CostModel;

namespace OServe.Engine.Demo;

/// <summary>Measured over predicted, for one tensor-parallel degree: a long prompt's TTFT, and chat throughput.</summary>
public sealed record ServiceCorrection(int Tp, double TtftFactor, double ChatRateFactor);

/// <summary>
/// The planner's analytic service model corrected by what the demo's calibration measured on
/// this machine for each deployment it chooses between: for a replica of tensor-parallel degree
/// tp, a prefill-bound type (more prompt than answer tokens) takes its TTFT times the measured /
/// predicted TTFT of a long prompt and serves at the rate divided by it; a decode-bound type serves
/// at the rate times the measured / predicted chat burst throughput, its time per output token
/// divided by it. The roofline fit of one tp1 replica alone missed the two deployments' figures by
/// up to 2x (and in opposite directions), which is enough to make the controller switch into the
/// worse one; the measurements are the demo's own two request types on the two deployments, so
/// the planner then decides on what this machine does. Other degrees and pp > 1 are not corrected.
/// </summary>
public sealed class MeasuredServiceModel(CostCoefficients coefficients, IReadOnlyList<ServiceCorrection> corrections) : IServiceModel
{
    private readonly IServiceModel analytic = new AnalyticServiceModel(coefficients);

    public IReadOnlyList<ServiceCorrection> Corrections => corrections;

    public ServiceEstimate Estimate(ModelSpec model, ReplicaConfig config, Links links, ReplicaMemory memory, double inputTokens, double outputTokens, double utilization)
    {
        var e = analytic.Estimate(model, config, links, memory, inputTokens, outputTokens, utilization);
        var c = corrections.FirstOrDefault(x => x.Tp == config.Tp);
        if (c is null || config.Pp != 1) return e;
        bool prefillBound = inputTokens > outputTokens;
        double rate = prefillBound ? e.Rate / c.TtftFactor : e.Rate * c.ChatRateFactor;
        double ttft = prefillBound ? e.TtftSec * c.TtftFactor : e.TtftSec;
        double tpot = prefillBound ? e.TpotSec : e.TpotSec / c.ChatRateFactor;
        double e2e = e.E2eSec + (ttft - e.TtftSec) + Math.Max(0, outputTokens - 1) * (tpot - e.TpotSec);
        return new ServiceEstimate(rate, e.BatchSize, ttft, tpot, e2e);
    }

    public string Describe() => "planner's service model corrected by measured / predicted: " + string.Join("; ", corrections.Select(c =>
        string.Create(CultureInfo.InvariantCulture, $"tp{c.Tp} long-prompt TTFT x{c.TtftFactor:F2}, chat throughput x{c.ChatRateFactor:F2}")));
}
