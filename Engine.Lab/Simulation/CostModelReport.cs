using OServe.Contracts;
using OServe.Planner.CostModel;

namespace OServe.Engine.Simulation;

/// <summary>
/// What the cost model says about every feasible replica shape of a cluster for one model (the
/// figures <c>oserve costmodel</c> prints). Rates and latencies are the planner's analytic steady
/// state (<c>ReplicaCost.estimate</c>) over the shared step-time model (<see cref="StepTimeModel"/>).
/// </summary>
public sealed record CostModelReport(string Model, string Cluster, CostModelReport.FitSummary? Fit, IReadOnlyList<CostModelReport.ShapeFigures> Shapes)
{
    public sealed record TypeSpec(string Name, double InputTokens, double OutputTokens);

    public sealed record KindError(string Kind, int Points, double MedianError, double P90Error, double MaxError);

    public sealed record FitSummary(string Source, IReadOnlyList<KindError> Kinds);

    public sealed record TypeFigures(string Name, double InputTokens, double OutputTokens, double RatePerGpu,
        double TtftLightSec, double TpotLightSec, double TtftSaturatedSec, double TpotSaturatedSec);

    public sealed record ShapeFigures(string Shape, string GpuType, int Tp, int Pp, bool CrossNode, int Gpus, string Source, string? Infeasible,
        double PrefillTokensPerGpuSec, double DecodeTokensPerGpuSec, int DecodeBatch, long KvCapacityTokens,
        double Prefill2048Sec, double Prefill2048CommShare, IReadOnlyList<TypeFigures> Types);

    public static CostModelReport Build(Cluster cluster, ModelCard card, CostCoefficients k, IReadOnlyList<TypeSpec> types, double light, double saturated)
    {
        var model = PlannerAdapter.Model(card);
        var spec = PlannerAdapter.Cluster(cluster);
        var shapes = new List<ShapeFigures>();
        // One node per distinct (GPU type, size, links): identical nodes give identical figures.
        foreach (var group in spec.Nodes.GroupBy(n => (n.Gpu.Name, n.NumGpus, n.IntraLinkBytesPerSec, n.AllReduceLatencySec, n.AllReduceBusBytesPerSec)))
        {
            var node = group.First();
            int gpusOfKind = group.Sum(n => n.NumGpus);
            var links = LinksModule.ofNode(spec, node);
            for (int tp = 1; tp <= node.NumGpus; tp *= 2)
                foreach (int pp in new[] { 1, 2, 4 })
                {
                    int size = tp * pp;
                    bool cross = size > node.NumGpus;
                    if (size > gpusOfKind || (cross && size % node.NumGpus != 0)) continue;
                    shapes.Add(Shape(k, model, links, new ReplicaConfig(node.Gpu, tp, pp, cross), types, light, saturated));
                }
        }
        return new CostModelReport(card.Name, cluster.Name, SummarizeFit(k), shapes);
    }

    private static ShapeFigures Shape(CostCoefficients k, ModelSpec model, Links links, ReplicaConfig c, IReadOnlyList<TypeSpec> types, double light, double saturated)
    {
        var step = new StepTimeModel(k, model, links, c);
        string label = $"{c.Gpu.Name} tp{c.Tp} pp{c.Pp}{(c.CrossNode ? " cross-node" : "")}";
        var memory = ReplicaCost.memory(k, model, c);
        if (memory.IsError)
            return new ShapeFigures(label, c.Gpu.Name, c.Tp, c.Pp, c.CrossNode, c.Size, step.Describe(), memory.ErrorValue, 0, 0, 0, 0, 0, 0, []);
        var mem = memory.ResultValue;
        int gpus = c.Size;
        // Per-GPU prefill: four 2048-token prompts per step; decode: as many sequences at context 1024 as fit (up to MaxNumSeqs).
        double prefill = 4 * 2048 / step.Seconds(StepShape.Prefill(4, 2048)) / gpus;
        int batch = (int)Math.Max(1, Math.Min(k.MaxNumSeqs, mem.KvCapacityTokens / 1024));
        double decode = batch / step.Seconds(StepShape.Decode(batch, 1024)) / gpus;
        var one = step.Parts(StepShape.Prefill(1, 2048));
        var figures = types.Select(t =>
        {
            var lo = ReplicaCost.estimate(k, model, links, c, mem, t.InputTokens, t.OutputTokens, light);
            var hi = ReplicaCost.estimate(k, model, links, c, mem, t.InputTokens, t.OutputTokens, saturated);
            return new TypeFigures(t.Name, t.InputTokens, t.OutputTokens, lo.Rate / gpus, lo.TtftSec, lo.TpotSec, hi.TtftSec, hi.TpotSec);
        }).ToList();
        return new ShapeFigures(label, c.Gpu.Name, c.Tp, c.Pp, c.CrossNode, gpus, step.Describe(), null, prefill, decode, batch, mem.KvCapacityTokens,
            one.TotalSec, one.CommSec / one.TotalSec, figures);
    }

    private static FitSummary? SummarizeFit(CostCoefficients k)
    {
        if (!Microsoft.FSharp.Core.OptionModule.IsSome(k.GpuSteps)) return null;
        var profile = k.GpuSteps!.Value;
        var kinds = GpuStepProfileModule.checkFit(profile).GroupBy(c => c.Kind).Select(g =>
        {
            var errors = g.Select(c => Math.Abs(c.RelativeError)).Order().ToList();
            return new KindError(g.Key, errors.Count, errors[errors.Count / 2], errors[Math.Min(errors.Count - 1, (int)(0.9 * errors.Count))], errors[^1]);
        }).ToList();
        return new FitSummary(profile.Source, kinds);
    }
}
