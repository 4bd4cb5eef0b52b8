using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using OServe.Contracts;
using OServe.Engine.Control;
using OServe.Planner.CostModel;
using OServe.Planner.Planning;
using OServe.Planner.Solver;
using ModelCard = OServe.Contracts.ModelCard;
using PlannerOptions = OServe.Contracts.PlannerOptions;

namespace OServe.Engine.Demo;

/// <summary>What the demo asks of the planner, and how it shows the planner's alternatives.</summary>
public static class DemoPlanning
{
    /// <summary>
    /// No pipeline-parallel replicas: the engine runs a replica's stages one after another within
    /// a step (no micro-batching), so on CPU a pp2 replica computes no faster than a tp1 one while
    /// the cost model would credit it with overlapped decode micro-batches.
    /// </summary>
    public static PlannerConstraint NoPipeline { get; } = new(
        "no-pipeline (the CPU engine runs a replica's stages one after another)",
        FSharpList<int>.Empty,
        FuncConvert.FromFunc<ModelContext, FSharpResult<Unit, string>>(ctx =>
        {
            foreach (var c in ctx.Candidates)
                if (c.Config.Pp > 1) ctx.Model.AddLinearConstraint(ctx.X[c.Index], 0, 0);
            return FSharpResult<Unit, string>.NewOk(null!);
        }));

    /// <summary>
    /// What the demo's planner must respect: <see cref="NoPipeline"/>, and every device serving
    /// (<c>Constraints.minGpusInUse</c>): the demo owns its cores, and with a plan in force the
    /// planner would otherwise spend its latency slack on the cheapest switch, 1 x tp2 -> 1 x tp1
    /// with one core idle at the foot of the chat ramp and a second switch a window later.
    /// </summary>
    public static IReadOnlyList<PlannerConstraint> ConstraintsFor(Cluster cluster) =>
        [NoPipeline, Constraints.minGpusInUse(cluster.NumGpus)];

    /// <summary>
    /// A window of the demo holds a handful of requests, so its forecast is noisy by tens of
    /// percent: a plan that serves under 3% more of it is not evidence enough to switch for
    /// (the planner's default, 0.5%, is for windows of thousands of requests).
    /// </summary>
    public const double ServedGainTolerance = 0.03;

    /// <summary>
    /// And a served gain within one standard deviation of the window's Poisson count is noise too
    /// (<c>min_switch_gain_sigmas</c>): at half-second windows, a clump of three long prompts made
    /// 2 x tp1 look 20% ahead of tp2 and the controller switched for it and back a window later.
    /// </summary>
    public const double GainSigmas = 1.0;

    /// <summary>
    /// The same noise on latency: a window's forecast of two or three long prompts swings by half,
    /// and tp2 and 2 x tp1 looked 6-11% faster than each other in turn (ten switches in one replay
    /// at 5%, when each switch took 0.2-1.6 s of building and warming up on the cores that serve).
    /// Regime changes gain 17-60%. Lowered to 10% once switches took 0.01-0.15 s, it let a clump of
    /// long prompts move the long-prompt phase onto 2 x tp1 (an 18% estimated gain at 2.2 s, kept
    /// until 12.3 s, in the final fresh-clone run); the surge checks bring the switch into the chat
    /// ramp forward instead.
    /// </summary>
    public const double LatencyGainThreshold = 0.15;

    /// <summary>
    /// The controller plans for the highest forecast of the next this-many windows. It was two
    /// while a switch took 0.2-2 s against one-second windows (the deployment had to fit the load
    /// when it was in place); a switch now takes 0.01-0.15 s, and a lead of two held the chat
    /// forecast up for a window after the burst, so the switch back to tp2 came 1.4-3.2 s into the
    /// long prompts.
    /// </summary>
    public const int ForecastLeadWindows = 1;

    /// <summary>
    /// The controller looks for a surge four times a window (<see cref="ControllerOptions.SurgeChecksPerWindow"/>):
    /// the chat ramp starts 0.4 s into a window, and the switch into 2 x tp1 came when that window
    /// or the next closed (4.0-5.1 s, the ramp already at 40-60 req/s), the chats of the ramp's first
    /// second served on tp2 meanwhile.
    /// </summary>
    public const int SurgeChecksPerWindow = 4;

    /// <summary>
    /// The planner loads a replica to this share of its calibrated capacity (the paper's rho).
    /// 0.65-0.7 while calibration timed the engines in-process only: the replays also run the HTTP
    /// server and the load generator on the same two cores, so the planner moved to 2 x tp1 only
    /// once tp2 had fallen behind over HTTP. The chat capacities now come from bursts over HTTP
    /// (<see cref="HttpProbe"/>), so the planner's default applies.
    /// </summary>
    public const double Rho = 0.85;

    /// <summary>A tiny model (two devices, two shapes) solves in milliseconds; the cap keeps a re-plan within a short window on a busy machine.</summary>
    public static PlannerOptions Solver { get; } = new()
    {
        MaxSolveSeconds = 0.5, Rho = Rho, MinSwitchServedGain = ServedGainTolerance, MinSwitchLatencyGain = LatencyGainThreshold,
        MinSwitchGainSigmas = GainSigmas,
    };

    public static Plan InitialPlan(Cluster cluster, ModelCard card, CostCoefficients k, IReadOnlyList<RequestTypeSpec> types, double windowS,
        IServiceModel? service = null)
    {
        var result = Planning.plan(new PlanRequest(cluster, card, types)
        {
            Coefficients = k, ServiceModel = service, NumWorkers = 1, WindowS = windowS, Options = Solver, Constraints = [.. ConstraintsFor(cluster)],
        });
        if (result.IsError) throw new InvalidOperationException("planning the demo's initial plan: " + string.Join("; ", result.ErrorValue));
        return result.ResultValue.Plan;
    }

    /// <summary>The planner's estimate for one deployment shape: requests/s served of those demanded, and mean E2E latency.</summary>
    public sealed record Candidate(string Shape, double ServedRps, double DemandRps, double MeanLatencyS);

    /// <summary>
    /// Each shape the planner chooses between, planned alone for the same forecast (no current
    /// plan, so no switch cost): what the planner expected of each when it decided.
    /// </summary>
    public static IReadOnlyList<Candidate> Candidates(ControllerOptions o, IReadOnlyList<RequestTypeSpec> types, IReadOnlyList<double> forecast)
    {
        var specs = PlanStep.Forecast(types, forecast, o.MinTypeRateRps);
        var shapes = new (string Shape, PlannerConstraint Only)[]
        {
            (DemoShapes.Tp2, Constraints.pinnedReplica(0, 2, 1)),
            (DemoShapes.TwoTp1, Constraints.maxTp(1)),
        };
        var list = new List<Candidate>();
        foreach (var (shape, only) in shapes)
        {
            var result = Planning.plan(new PlanRequest(o.Cluster, o.Model, specs)
            {
                Coefficients = o.Coefficients, ServiceModel = o.ServiceModel, NumWorkers = 1, WindowS = o.WindowS, Options = o.Planner, Slo = o.Slo,
                Constraints = [.. o.Constraints, only],
            });
            if (result.IsOk && result.ResultValue.Plan.Predicted is { } p)
                list.Add(new Candidate(PlanText.Replicas(result.ResultValue.Plan), p.ServedRps, p.DemandRps, p.MeanLatencyS ?? double.NaN));
        }
        return list;
    }
}
