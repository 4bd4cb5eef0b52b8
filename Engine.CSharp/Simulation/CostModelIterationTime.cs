using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// Step time of one replica from the planner's cost model, for a mixed batch of prefill chunks and
/// decodes (continuous batching): max(compute, HBM traffic) + TP all-reduces + PP sends + a fixed
/// overhead, with the planner's coefficients. A step that is one fresh prefill equals
/// <c>ReplicaCost.prefillSec</c> for one sequence, and a step of decodes equals
/// <c>ReplicaCost.decodeCycleSec</c>; tests pin both, so simulator and planner agree. With a
/// measured profile (<c>oserve profile</c>) the step time is the profile's linear model over the
/// same batch totals instead of the roofline (<c>ReplicaCost.measuredStepSec</c>).
/// </summary>
public sealed class CostModelIterationTime : IIterationTimeModel
{
    private readonly CostCoefficients _k;
    private readonly ModelSpec _m;
    private readonly Links _links;
    private readonly ReplicaConfig _c;
    private readonly double _paramFlopsPerToken;
    private readonly double _attentionFlopsPerPair;
    private readonly double _weightBytesPerTp;
    private readonly double _activationBytesPerToken;

    public CostModelIterationTime(CostCoefficients coefficients, ModelSpec model, Links links, ReplicaConfig config)
    {
        _k = coefficients;
        _m = model;
        _links = links;
        _c = config;
        _paramFlopsPerToken = 2.0 * model.TotalParams;
        // The planner's prefill attention is factor * 2 * L * t^2 * H * d for t tokens, i.e. 4 L H d per
        // (query, key) pair of the causal triangle (t^2 / 2 pairs).
        _attentionFlopsPerPair = coefficients.AttentionFlopsFactor * 4.0 * model.NumLayers * model.NumHeads * model.HeadDim;
        _weightBytesPerTp = (double)model.WeightBytes / config.Tp;
        _activationBytesPerToken = (double)model.HiddenSize * model.DtypeBytes;
    }

    public double StepSeconds(SchedulerOutput output) => Seconds(BatchShape.Of(output));

    public double Seconds(BatchShape s) => Seconds(s.PrefillTokens, s.NumPrefills, s.AttentionPairs, s.NumDecodes, s.DecodeContextTokens);

    /// <summary>The step time of a batch described by totals (exposed for tests and calibration).</summary>
    public double Seconds(double prefillTokens, double numPrefills, double attentionPairs, double numDecodes, double decodeContextTokens)
    {
        if (prefillTokens == 0 && numDecodes == 0) return 0;
        int tp = _c.Tp, pp = _c.Pp;
        double comm = CommSeconds(prefillTokens, numDecodes);
        if (CostCoefficientsModule.isMeasured(_k))
            return ReplicaCost.measuredStepSec(_k, _c, prefillTokens, numPrefills, attentionPairs, numDecodes, decodeContextTokens) + comm;
        double peak = _c.Gpu.PeakFlops;
        // Prefill passes the stages one after another; decodes run as min(pp, decodes) micro-batches
        // that overlap (as the planner's decodeCycleSec: one sequence alone gains nothing from PP).
        double overlap = Math.Max(1, Math.Min(pp, numDecodes));
        double compute = (_paramFlopsPerToken * prefillTokens + _attentionFlopsPerPair * attentionPairs) / (tp * peak * _k.PrefillMfu)
                       + _paramFlopsPerToken * numDecodes / (tp * overlap * peak * _k.DecodeMfu);
        double kvBytes = decodeContextTokens * _m.KvBytesPerToken / (tp * overlap);
        double memory = (_weightBytesPerTp + kvBytes) / (_c.Gpu.HbmBytesPerSec * _k.DecodeHbmEfficiency);
        return Math.Max(compute, memory) + comm + _k.IterationOverheadSec;
    }

    // TP all-reduces and PP sends; a step of decodes only runs as pp micro-batches.
    private double CommSeconds(double prefillTokens, double numDecodes)
    {
        int tp = _c.Tp, pp = _c.Pp;
        double activation = (prefillTokens > 0 ? prefillTokens + numDecodes : numDecodes / pp) * _activationBytesPerToken;
        return 2.0 * _m.NumLayers * ReplicaCost.allReduceSec(_k, _links, tp, activation) + (pp - 1) * SendSec(activation);
    }

    // Mirrors the planner's stage send: inter-node link when stages sit on different nodes.
    private double SendSec(double bytes) => _c.CrossNode
        ? _k.InterNodeLatencySec + bytes / (_links.InterBytesPerSec * _k.LinkEfficiency)
        : _k.IntraNodeLatencySec + bytes / (_links.IntraBytesPerSec * _k.LinkEfficiency);
}
