using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Engine.Demo;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using Xunit;

namespace OServe.Engine.Tests.Demo;

/// <summary>
/// The demo's planning set-up on a calibration with the trade-off it is built around (figures of
/// the order this 2-core machine measures): the planner must answer each regime differently, or
/// the controller would have no reason to switch.
/// </summary>
public sealed class DemoPlanningTests
{
    private static readonly Cluster Cluster = CpuCostCalibration.Cluster(2, 1.0, flops: 50e9, copyBytesPerSec: 15e9, perCore: true);
    private static readonly ModelCard Card = OServe.Engine.Orchestration.ModelCardOf.Llama(
        OServe.Models.BuiltInModel.ConfigOf(new DemoRunSettings().Model), "builtin", TorchSharp.torch.ScalarType.Float32);

    private static CostCoefficients Coefficients()
    {
        var read = CostCoefficientsModule.ofMap("test", new Dictionary<string, string>
        {
            // A per-step cost a tp2 replica cannot split and a hand-off per all-reduce: what makes 2 x tp1 the faster on many chats.
            ["iterationOverheadSec"] = "0.003", ["prefillMfu"] = "4", ["decodeMfu"] = "2", ["decodeHbmEfficiency"] = "1",
            ["linkEfficiency"] = "1", ["workspaceBytes"] = (64L << 20).ToString(),
            ["minKvTokens"] = "1280", ["maxNumSeqs"] = "16",
        });
        Assert.True(read.IsOk, string.Join("; ", read.IsError ? read.ErrorValue : []));
        return read.ResultValue;
    }

    private static ControllerOptions Options() => new()
    {
        Cluster = Cluster, Model = Card, Coefficients = Coefficients(), WindowS = 1, Planner = DemoPlanning.Solver, Constraints = DemoPlanning.ConstraintsFor(Cluster),
    };

    private static readonly DemoRequestShapes Shapes = new();

    private static readonly RequestTypeSpec[] Types =
    [
        new() { Name = "chat", InputTokens = Shapes.ChatInput, OutputTokens = Shapes.ChatOutput },
        new() { Name = "long", InputTokens = Shapes.LongInput, OutputTokens = Shapes.LongOutput },
    ];

    [Fact]
    public void Light_long_prompts_get_one_tp2_replica()
    {
        var plan = DemoPlanning.InitialPlan(Cluster, Card, Coefficients(), [Types[0] with { RateRps = 0.02 }, Types[1] with { RateRps = 2 }], 1);
        Assert.Equal("1 x tp2", PlanText.Replicas(plan));
        Assert.All(plan.Replicas, r => Assert.Equal(1, r.Pp));
    }

    [Fact]
    public void A_chat_burst_beyond_one_tp2_replica_gets_two_tp1_replicas()
    {
        // Saturated: what each deployment can serve of more chats than either keeps up with. Not
        // vastly more: the solver counts rates in units of the demand / its rate resolution, so at
        // 5000 req/s a deployment's capacity came out in steps of 25 (tp2 "50", 2 x tp1 "100").
        var saturated = DemoPlanning.Candidates(Options(), Types, [300, 0.02]);
        double tp2 = Assert.Single(saturated, c => c.Shape == DemoShapes.Tp2).ServedRps;
        double dp = Assert.Single(saturated, c => c.Shape == DemoShapes.TwoTp1).ServedRps;
        Assert.True(dp > tp2 * 1.1, $"2 x tp1 serves {dp}, 1 x tp2 {tp2} req/s of chats at most");
        // A burst beyond one tp2 replica, within two tp1 ones.
        double burst = 1.1 * tp2;
        var plan = DemoPlanning.InitialPlan(Cluster, Card, Coefficients(), [Types[0] with { RateRps = burst }, Types[1] with { RateRps = 0.02 }], 1);
        Assert.Equal("2 x tp1", PlanText.Replicas(plan));
    }

    [Fact]
    public void Candidates_are_both_deployments_planned_alone_for_the_forecast()
    {
        var candidates = DemoPlanning.Candidates(Options(), Types, [0.02, 2]);
        Assert.Equal([DemoShapes.Tp2, DemoShapes.TwoTp1], candidates.Select(c => c.Shape));
        Assert.All(candidates, c => Assert.Equal(2.02, c.DemandRps, 3));
        Assert.True(candidates[0].MeanLatencyS < candidates[1].MeanLatencyS, "one tp2 replica is the faster on light long prompts");
    }
}

public sealed class MeasuredServiceModelTests
{
    [Fact]
    public void Each_degree_takes_its_own_measured_factors_by_type_kind()
    {
        var k = CostCoefficientsModule.defaults;
        var m = OServe.Planner.CostModel.Hardware.llama2_7b;
        var gpu = OServe.Planner.CostModel.Hardware.h100;
        var links = new Links(400e9, 400e9, 20e-6, 400e9, 25e-6);
        var corrected = new MeasuredServiceModel(k, [new ServiceCorrection(2, TtftFactor: 2.0, ChatRateFactor: 0.5)]);
        IServiceModel raw = new AnalyticServiceModel(k);
        ServiceEstimate Both(IServiceModel s, int tp, double input, double output)
        {
            var config = new ReplicaConfig(gpu, tp, 1, false);
            var memory = ReplicaCost.memory(k, m, config).ResultValue;
            return s.Estimate(m, config, links, memory, input, output, 0.5);
        }
        // tp2, prefill-bound: TTFT x2, rate /2; decode-bound: rate x0.5, TPOT /0.5.
        var (longRaw, longFixed) = (Both(raw, 2, 2048, 8), Both(corrected, 2, 2048, 8));
        Assert.Equal(longRaw.TtftSec * 2, longFixed.TtftSec, 9);
        Assert.Equal(longRaw.Rate / 2, longFixed.Rate, 9);
        var (chatRaw, chatFixed) = (Both(raw, 2, 16, 256), Both(corrected, 2, 16, 256));
        Assert.Equal(chatRaw.Rate * 0.5, chatFixed.Rate, 9);
        Assert.Equal(chatRaw.TpotSec / 0.5, chatFixed.TpotSec, 9);
        Assert.Equal(chatRaw.E2eSec + 255 * chatRaw.TpotSec, chatFixed.E2eSec, 6);
        // No factor measured for tp1: the analytic estimate unchanged.
        Assert.Equal(Both(raw, 1, 16, 256), Both(corrected, 1, 16, 256));
        Assert.Contains("tp2 long-prompt TTFT x2.00, chat throughput x0.50", corrected.Describe());
    }
}

public sealed class DemoCalibrationTests
{
    [Fact]
    public void The_all_reduce_latency_is_what_the_tp2_decode_step_loses_beyond_the_model_spread_over_its_all_reduces()
    {
        var values = new Dictionary<string, string>
        {
            ["iterationOverheadSec"] = "0.002", ["prefillMfu"] = "2", ["decodeMfu"] = "1", ["decodeHbmEfficiency"] = "1",
            ["linkEfficiency"] = "1", ["workspaceBytes"] = (64L << 20).ToString(), ["minKvTokens"] = "1280", ["maxNumSeqs"] = "16",
        };
        var cpu = new CpuCalibration
        {
            MatmulFlops = 50e9, CopyBytesPerSec = 15e9, PerCore = true, ShortPrefillTokens = 32, ShortPrefillSec = 0.01, LongPrefillTokens = 1024,
            LongPrefillSec = 0.2, DecodeStepSec = 0.006, DecodeBatch = 8, BatchedDecodeStepSec = 0.01,
            Coefficients = CostCoefficientsModule.ofMap("test", values).ResultValue,
        };
        var cluster = CpuCostCalibration.Cluster(cpu, 2, 1.0);
        var card = OServe.Engine.Orchestration.ModelCardOf.Llama(
            OServe.Models.BuiltInModel.ConfigOf(new DemoRunSettings().Model), "builtin", TorchSharp.torch.ScalarType.Float32);
        var none = DemoCalibration.FitAllReduceLatency(cpu, card, cluster, 0); // faster than the model: never a negative latency
        Assert.Equal(0, none.AllReduceLatencySec);
        var (k, m) = (none.Coefficients, ContractMapping.model(card));
        var spec = ContractMapping.cluster(CpuCostCalibration.Cluster(none, 2, 1.0)).ResultValue;
        var node = spec.Nodes[0];
        Assert.Equal(0, node.AllReduceLatencySec);
        double predicted = ReplicaCost.decodeCycleSec(k, m, LinksModule.ofNode(spec, node), new ReplicaConfig(node.Gpu, 2, 1, false), 1, 16);

        var fitted = DemoCalibration.FitAllReduceLatency(cpu, card, cluster, predicted + 2 * m.NumLayers * 100e-6);

        Assert.Equal(100e-6, fitted.AllReduceLatencySec!.Value, 9);
        // The fitted latency is the cluster's: the planner reads it from there.
        Assert.Equal(100e-6, ContractMapping.cluster(CpuCostCalibration.Cluster(fitted, 2, 1.0)).ResultValue.Nodes[0].AllReduceLatencySec, 9);
        Assert.Contains("all-reduce latency 100 us", fitted.Describe());
    }
}
