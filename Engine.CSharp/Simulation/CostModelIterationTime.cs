using OServe.Engine.Scheduling;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// Step time of one replica from the planner's cost model, for a mixed batch of prefill chunks and
/// decodes (continuous batching): max(compute, HBM traffic) + TP all-reduces + PP sends + a fixed
/// overhead, with the planner's coefficients. A step that is one fresh prefill equals
/// <c>ReplicaCost.prefillSec</c> for one sequence, and a step of decodes equals
/// <c>ReplicaCost.decodeCycleSec</c>; tests pin both, so simulator and planner agree.
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

    public double StepSeconds(SchedulerOutput output)
    {
        double prefillTokens = 0, attentionPairs = 0, numDecodes = 0, decodeContext = 0;
        var chunks = output.Chunks;
        for (int i = 0; i < chunks.Length; i++)
        {
            var chunk = chunks[i];
            int n = chunk.NumTokens, start = chunk.StartPosition;
            if (n == 1 && start > 0)
            {
                numDecodes++;
                decodeContext += start + 1;
            }
            else
            {
                prefillTokens += n;
                // Chunk [start, start + n) attends to every earlier position: n * (start + n / 2) pairs.
                attentionPairs += n * (start + n / 2.0);
            }
        }
        return Seconds(prefillTokens, attentionPairs, numDecodes, decodeContext);
    }

    /// <summary>The step time of a batch described by totals (exposed for tests and calibration).</summary>
    public double Seconds(double prefillTokens, double attentionPairs, double numDecodes, double decodeContextTokens)
    {
        if (prefillTokens == 0 && numDecodes == 0) return 0;
        int tp = _c.Tp, pp = _c.Pp;
        double peak = _c.Gpu.PeakFlops;
        // Prefill passes the stages one after another; decodes run as min(pp, decodes) micro-batches
        // that overlap (as the planner's decodeCycleSec: one sequence alone gains nothing from PP).
        double overlap = Math.Max(1, Math.Min(pp, numDecodes));
        double compute = (_paramFlopsPerToken * prefillTokens + _attentionFlopsPerPair * attentionPairs) / (tp * peak * _k.PrefillMfu)
                       + _paramFlopsPerToken * numDecodes / (tp * overlap * peak * _k.DecodeMfu);
        double kvBytes = decodeContextTokens * _m.KvBytesPerToken / (tp * overlap);
        double memory = (_weightBytesPerTp + kvBytes) / (_c.Gpu.HbmBytesPerSec * _k.DecodeHbmEfficiency);
        double comm;
        if (prefillTokens > 0)
        {
            double activation = (prefillTokens + numDecodes) * _activationBytesPerToken;
            comm = 2.0 * _m.NumLayers * ReplicaCost.allReduceSec(_k, _links, tp, activation) + (pp - 1) * SendSec(activation);
        }
        else
        {
            double activation = numDecodes / pp * _activationBytesPerToken;
            comm = 2.0 * _m.NumLayers * ReplicaCost.allReduceSec(_k, _links, tp, activation) + (pp - 1) * SendSec(activation);
        }
        return Math.Max(compute, memory) + comm + _k.IterationOverheadSec;
    }

    // Mirrors the planner's stage send: inter-node link when stages sit on different nodes.
    private double SendSec(double bytes) => _c.CrossNode
        ? _k.InterNodeLatencySec + bytes / (_links.InterBytesPerSec * _k.LinkEfficiency)
        : _k.IntraNodeLatencySec + bytes / (_links.IntraBytesPerSec * _k.LinkEfficiency);
}
