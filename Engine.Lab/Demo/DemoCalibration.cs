using System.Diagnostics;
using System.Globalization;
using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Engine.Orchestration;
using OServe.Models;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using ModelCard = OServe.Contracts.ModelCard;

namespace OServe.Engine.Demo;

/// <summary>
/// One deployment's long-prompt TTFT and chat-burst throughput, as the planner's cost model predicts
/// them and as the engine did: in-process (<see cref="MeasuredRps"/>) and through the OpenAI server
/// with the load generator on the same cores (<see cref="MeasuredHttpRps"/>, NaN when not measured).
/// </summary>
public sealed record ShapeFigures(string Shape, double PredictedTtftS, double MeasuredTtftS, double PredictedRps, double MeasuredRps)
{
    public double MeasuredHttpRps { get; init; } = double.NaN;

    /// <summary>The chat throughput the replays can expect: over HTTP where it was measured, else in-process.</summary>
    public double ServedRps => double.IsFinite(MeasuredHttpRps) && MeasuredHttpRps > 0 ? MeasuredHttpRps : MeasuredRps;
}

/// <summary>
/// The demo's calibration on two logical devices of one core each: the cost model fitted to this
/// machine, and both deployments it will choose between measured against its predictions.
/// <list type="number">
/// <item>one core's matmul FLOP/s and copy bandwidth (a thread with one intra-op thread);</item>
/// <item>a tp1 replica on one device timed at two prompt lengths (the longer the workload's long
/// prompt) and two decode batches, which fits the roofline coefficients (<see cref="CpuCostCalibration"/>);</item>
/// <item>a tp2 replica timed on a decode step: what it loses to the hand-offs between its two
/// threads beyond the planner's all-reduce bytes becomes the all-reduce latency
/// (<see cref="CpuCalibration.AllReduceLatencySec"/>, which the cluster carries), spread over the 2 x layers all-reduces of a step;</item>
/// <item>both deployments (1 x tp2, 2 x tp1) on an idle long prompt (TTFT, best of the repeats on
/// a warm replica; a lone prompt on 2 x tp1 runs on one tp1 replica) and on a burst of
/// 2 x max_num_seqs chats sent at once (requests/s until the last finishes), next to the planner's
/// estimates (ReplicaCost.estimate: TTFT at light load; saturated rate times replicas); 2 x tp1 is
/// reached from 1 x tp2 by a live switch, whose time (<see cref="SwitchSeconds"/>) is shown.</item>
/// </list>
/// </summary>
public sealed record DemoCalibration(CpuCalibration Cpu, Cluster Cluster, IReadOnlyList<ShapeFigures> Shapes, double SwitchSeconds, double WallSeconds)
{
    public CostCoefficients Coefficients => Cpu.Coefficients;

    /// <summary>The planner's service model corrected by these measurements (<see cref="MeasuredServiceModel"/>); a factor that cannot be formed stays 1.</summary>
    public MeasuredServiceModel ServiceModel()
    {
        static double Ratio(double measured, double predicted) =>
            measured > 0 && predicted > 0 && double.IsFinite(measured / predicted) ? measured / predicted : 1;
        return new MeasuredServiceModel(Coefficients, Shapes.Select(s =>
            new ServiceCorrection(DemoShapes.TpOf(s.Shape), Ratio(s.MeasuredTtftS, s.PredictedTtftS), Ratio(s.ServedRps, s.PredictedRps))).ToArray());
    }

    public ShapeFigures Of(string shape) => Shapes.Single(s => s.Shape == shape);

    public static async Task<DemoCalibration> RunAsync(LoadedModel model, ModelCard card, DemoRequestShapes shapes, DemoRunSettings settings,
        int repeats, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var core = CpuCostCalibration.MeasureOneCore();
        var provisional = CpuCostCalibration.Cluster(2, settings.MemoryGibPerDevice, core.Flops, core.CopyBytesPerSec, perCore: true);
        RequestTypeSpec[] types = [new() { Name = DemoWorkload.Chat, InputTokens = shapes.ChatInput, OutputTokens = shapes.ChatOutput, RateRps = 1 }];

        CpuCalibration cpu;
        var onOneCore = provisional with { Nodes = [provisional.Nodes[0] with { Gpus = 1 }], Name = "cpu-x1" };
        double ttftTp1, ttftTp2, rpsTp2, rpsTwoTp1;
        await using (var one = settings.Start(model, onOneCore, DemoShapes.PlanOf(DemoShapes.OneTp1, onOneCore, card.Name, types)))
        {
            cpu = await CpuCostCalibration.MeasureAsync(one, card, settings.Engine.MaxNumSeqs, ct, core, shapes.LongInput);
            // A single prompt on 2 x tp1 runs on one tp1 replica; timed again now that the replica
            // is warm, as tp2's is below (the fit's own long prefill came first on fresh threads).
            ttftTp1 = await EngineProbe.BestTtftAsync(one, shapes.LongInput, repeats, ct);
        }

        int burst = 2 * settings.Engine.MaxNumSeqs;
        double switchS, httpTp2, httpTwoTp1;
        await using (var rt = settings.Start(model, provisional, DemoShapes.PlanOf(DemoShapes.Tp2, provisional, card.Name, types)))
        await using (var http = await HttpProbe.StartAsync(rt, model.Name, ct))
        {
            await EngineProbe.TimeAsync(rt, 16, 2, 0, ct); // warm-up: first-call costs stay out of the figures
            ttftTp2 = await EngineProbe.BestTtftAsync(rt, shapes.LongInput, repeats, ct);
            cpu = FitAllReduceLatency(cpu, card, provisional, await EngineProbe.BestDecodeStepAsync(rt, repeats, ct));
            rpsTp2 = await EngineProbe.BestBurstRpsAsync(rt, burst, shapes.ChatInput, shapes.ChatOutput, repeats, ct);
            httpTp2 = await http.BestBurstRpsAsync(burst, shapes.ChatInput, shapes.ChatOutput, repeats, ct);
            // 2 x tp1 by a live switch, as the adaptive replays reach it: its time is shown, and the
            // engine's pooled threads (ComputeThreads) are then as many as a switch holds at once.
            var report = await rt.ApplyAsync(DemoShapes.PlanOf(DemoShapes.TwoTp1, provisional, card.Name, types, version: 2), ct);
            if (report.Outcome != SwitchOutcome.Applied)
                throw new InvalidOperationException($"calibration's live switch to {DemoShapes.TwoTp1} failed: {report.Error}");
            switchS = report.TotalSeconds;
            await EngineProbe.TimeAsync(rt, shapes.LongInput, 2, 0, ct);
            rpsTwoTp1 = await EngineProbe.BestBurstRpsAsync(rt, burst, shapes.ChatInput, shapes.ChatOutput, repeats, ct);
            httpTwoTp1 = await http.BestBurstRpsAsync(burst, shapes.ChatInput, shapes.ChatOutput, repeats, ct);
        }

        var cluster = CpuCostCalibration.Cluster(cpu, 2, settings.MemoryGibPerDevice);
        ShapeFigures Figures(string shape, int tp, int replicas, double ttft, double rps, double httpRps) => new(shape,
            Estimate(cpu.Coefficients, card, cluster, tp, shapes.LongInput, shapes.LongOutput, 0.01).TtftSec, ttft,
            replicas * Estimate(cpu.Coefficients, card, cluster, tp, shapes.ChatInput, shapes.ChatOutput, 0.85).Rate, rps) { MeasuredHttpRps = httpRps };
        return new DemoCalibration(cpu, cluster,
            [Figures(DemoShapes.Tp2, 2, 1, ttftTp2, rpsTp2, httpTp2), Figures(DemoShapes.TwoTp1, 1, 2, ttftTp1, rpsTwoTp1, httpTwoTp1)], switchS, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The all-reduce latency that makes the planner's tp2 decode step match the measured one: the
    /// residual (measured minus predicted without latency) over the 2 x layers all-reduces of a
    /// step; never negative. The decode step, not the prefill: there the hand-offs are a large
    /// share of a few milliseconds, while a long prefill's compute noise would swamp them.
    /// </summary>
    public static CpuCalibration FitAllReduceLatency(CpuCalibration cpu, ModelCard card, Cluster cluster, double measuredDecodeStepS)
    {
        var withoutLatency = cluster with { Nodes = cluster.Nodes.Select(n => n with { AllreduceLatencyUs = 0 }).ToList() };
        var (k, m, links, config) = Inputs(cpu.Coefficients, card, withoutLatency, 2);
        double decode = ReplicaCost.decodeCycleSec(k, m, links, config, 1, 16);
        return cpu with { AllReduceLatencySec = Math.Max(0, (measuredDecodeStepS - decode) / (2.0 * m.NumLayers)) };
    }

    /// <summary>The planner's steady-state estimate of one tp-way replica on one request type at utilization <paramref name="rho"/>.</summary>
    public static ServiceEstimate Estimate(CostCoefficients k, ModelCard card, Cluster cluster, int tp, double input, double output, double rho)
    {
        var (kk, m, links, config) = Inputs(k, card, cluster, tp);
        var memory = ReplicaCost.memory(kk, m, config);
        if (memory.IsError) throw new InvalidOperationException($"a tp{tp} replica does not fit a demo device: {memory.ErrorValue}");
        return ReplicaCost.estimate(kk, m, links, config, memory.ResultValue, input, output, rho);
    }

    private static (CostCoefficients, ModelSpec, Links, ReplicaConfig) Inputs(CostCoefficients k, ModelCard card, Cluster cluster, int tp)
    {
        var spec = ContractMapping.cluster(cluster);
        if (spec.IsError) throw new InvalidOperationException("the demo's cluster: " + string.Join("; ", spec.ErrorValue.Select(e => e.ToString())));
        var node = spec.ResultValue.Nodes[0];
        return (k, ContractMapping.model(card), LinksModule.ofNode(spec.ResultValue, node), new ReplicaConfig(node.Gpu, tp, 1, false));
    }

    public IEnumerable<string> Render(DemoRequestShapes shapes)
    {
        var inv = CultureInfo.InvariantCulture;
        yield return string.Create(inv, $"calibration ({WallSeconds:F1} s): {Cpu.Describe()}");
        yield return string.Create(inv, $"  {"deployment",-10}  {"TTFT, one " + shapes.LongInput + "-token prompt (ms)",-34}  chat burst throughput (req/s)");
        yield return string.Create(inv, $"  {"",-10}  {"predicted",10} {"measured",10}{"",14}  {"predicted",10} {"measured",10} {"over HTTP",10}");
        foreach (var s in Shapes)
            yield return string.Create(inv, $"  {s.Shape,-10}  {s.PredictedTtftS * 1e3,10:F1} {s.MeasuredTtftS * 1e3,10:F1}{"",14}  {s.PredictedRps,10:F1} {s.MeasuredRps,10:F1} {s.MeasuredHttpRps,10:F1}");
        var tp2 = Of(DemoShapes.Tp2);
        var dp = Of(DemoShapes.TwoTp1);
        yield return string.Create(inv,
            $"  measured: 1 x tp2 {(tp2.MeasuredTtftS < dp.MeasuredTtftS ? "has" : "does NOT have")} the lower long-prompt TTFT ({tp2.MeasuredTtftS * 1e3:F0} vs {dp.MeasuredTtftS * 1e3:F0} ms); " +
            $"2 x tp1 {(dp.ServedRps > tp2.ServedRps ? "has" : "does NOT have")} the higher chat throughput over HTTP ({dp.ServedRps:F1} vs {tp2.ServedRps:F1} req/s)");
        yield return "  the workload's rates and the planner's chat capacities come from the figures over HTTP: the replays run the server and the load generator on the same cores";
        yield return string.Create(inv, $"  live switch 1 x tp2 -> 2 x tp1 on idle devices: {SwitchSeconds * 1e3:F0} ms");
    }
}
