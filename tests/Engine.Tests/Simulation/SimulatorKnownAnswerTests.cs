using OServe.Engine.Simulation;
using Xunit;
using static OServe.Engine.Tests.Simulation.SimulationTestKit;

namespace OServe.Engine.Tests.Simulation;

/// <summary>One replica, fixed step time, hand-placed arrivals: latencies worked out by hand.</summary>
public sealed class SimulatorKnownAnswerTests
{
    private static readonly OServe.Contracts.Plan OneReplica = Plan(
        [Replica("r0", 1, "node0/0")], [Type("t", 100, 10)], new Dictionary<string, Dictionary<string, double>> { ["t"] = new() { ["r0"] = 1 } });

    private static IReadOnlyList<RequestRecord> Simulate(double stepS, int budget, params SimRequest[] requests) =>
        Run(new SimulationSetup { Requests = requests, Plans = [OneReplica], ReplicaModels = Fixed(stepS, budget) }).Metrics.Records;

    [Fact]
    public void LoneRequest_TakesOneStepPerToken()
    {
        // Step 1 prefills the 10-token prompt and samples token 1 at 0.1 s; four decodes follow.
        var r = Simulate(0.1, 8192, new SimRequest(0, 0, 10, 5))[0];
        Assert.Equal(0.1, r.Ttft, 9);
        Assert.Equal(0.5, r.E2e, 9);
        Assert.Equal(0.1, r.Tpot, 9);
    }

    [Fact]
    public void ArrivalDuringAStep_WaitsForTheNextStep_ThenBatchesWithTheRunningRequest()
    {
        // A: steps [0,.1] prefill, [.1,.2] decode, [.2,.3] decode. B arrives at .05, joins the step
        // at .1 (A's decode + B's prefill) and decodes at .3 and .4.
        var records = Simulate(0.1, 8192, new SimRequest(0, 0, 10, 3), new SimRequest(1, 0.05, 10, 3));
        Assert.Equal(0.1, records[0].Ttft, 9);
        Assert.Equal(0.3, records[0].E2e, 9);
        Assert.Equal(0.15, records[1].Ttft, 9);
        Assert.Equal(0.35, records[1].E2e, 9);
    }

    [Fact]
    public void LongPrompt_IsPrefilledInChunksOfTheTokenBudget()
    {
        // 20 prompt tokens, budget 8: chunks of 8, 8 and 4; the third samples the first token at 0.3 s.
        var r = Simulate(0.1, 8, new SimRequest(0, 2.0, 20, 2))[0];
        Assert.Equal(0.3, r.Ttft, 9);
        Assert.Equal(0.4, r.E2e, 9);
    }

    [Fact]
    public void IdleReplica_StartsAtTheArrival_NotAtATick()
    {
        var records = Simulate(0.25, 8192, new SimRequest(0, 1.0, 5, 1), new SimRequest(1, 7.3, 5, 2));
        Assert.Equal(1.25, records[0].FinishS, 9);
        Assert.Equal(7.8, records[1].FinishS, 9);
    }

    [Fact]
    public void Dispatcher_SendsEachTypeToTheReplicasItIsRoutedTo()
    {
        var plan = Plan([Replica("short", 1, "node0/0"), Replica("long", 1, "node0/1")],
            [Type("chat", 100, 200), Type("prompt", 3000, 10)],
            new Dictionary<string, Dictionary<string, double>> { ["chat"] = new() { ["short"] = 1 }, ["prompt"] = new() { ["long"] = 1 } });
        var requests = new[] { new SimRequest(0, 0, 120, 150), new SimRequest(1, 0.01, 2500, 12), new SimRequest(2, 0.02, 90, 300) };
        var sim = Run(new SimulationSetup { Requests = requests, Plans = [plan], ReplicaModels = Fixed(0.01) });
        var byId = sim.Replicas.ToDictionary(r => r.Index, r => r.Id);
        Assert.Equal(["short", "long", "short"], sim.Metrics.Records.Select(r => byId[r.ReplicaIndex]));
    }

    [Fact]
    public void WeightedLeastLoaded_SplitsIdenticalReplicasByWeight()
    {
        // Weight 3 vs 1: with every request still running, r0 takes three for each one r1 takes.
        var plan = Plan([Replica("r0", 1, "node0/0"), Replica("r1", 1, "node0/1")], [Type("t", 100, 100)],
            new Dictionary<string, Dictionary<string, double>> { ["t"] = new() { ["r0"] = 3, ["r1"] = 1 } });
        var requests = Enumerable.Range(0, 40).Select(i => new SimRequest(i, i * 0.001, 100, 1000)).ToArray();
        var sim = Run(new SimulationSetup { Requests = requests, Plans = [plan], ReplicaModels = Fixed(0.001) });
        Assert.Equal(30, sim.Metrics.Records.Count(r => r.ReplicaIndex == 0));
        Assert.Equal(10, sim.Metrics.Records.Count(r => r.ReplicaIndex == 1));
    }

    [Fact]
    public void A_step_after_the_replica_sat_idle_is_told_how_long_it_waited()
    {
        // Steps of 0.1 s. A (3 tokens) runs [0,.1] [.1,.2] [.2,.3]; B arrives at 1.0 and runs [1.0,1.1] [1.1,1.2].
        var model = new IdleRecording(0.1);
        var setup = new SimulationSetup
        {
            Requests = [new SimRequest(0, 0, 10, 3), new SimRequest(1, 1.0, 10, 2)],
            Plans = [OneReplica],
            ReplicaModels = _ => new ReplicaModel(Fixed(0.1)(OneReplica.Replicas[0]).Scheduler, model),
        };
        Run(setup);
        Assert.Equal(5, model.Idle.Count);
        Assert.Equal(double.PositiveInfinity, model.Idle[0]);
        Assert.Equal([0, 0], model.Idle.Skip(1).Take(2).Select(x => Math.Round(x, 9)));
        Assert.Equal(0.7, model.Idle[3], 9);
        Assert.Equal(0, model.Idle[4], 9);
    }

    [Fact]
    public void A_measured_profile_slows_only_the_steps_after_an_idle_wait()
    {
        // A 10-token prefill takes 0.1 s and a decode 0.1 s; the profile's after-idle factor 1.5
        // applies to A's first step (the replica has never run) and B's first (0.65 s idle), not to
        // the steps that follow at once.
        var path = Path.Combine(Path.GetTempPath(), $"oserve-idle-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "coefficients:\n  iterationOverheadSec: 0\n  prefillSecPerToken: 0.01\n  decodeSecPerSeq: 0.1\nafterIdleFactor: 1.5\n");
        try
        {
            var profile = OServe.Engine.Profiling.ProfileFile.LoadStepTime(path);
            Assert.Equal(1.5, profile.AfterIdleFactor);
            var setup = new SimulationSetup
            {
                Requests = [new SimRequest(0, 0, 10, 3), new SimRequest(1, 1.0, 10, 2)],
                Plans = [OneReplica],
                ReplicaModels = _ => new ReplicaModel(Fixed(0.1)(OneReplica.Replicas[0]).Scheduler, profile),
            };
            var records = Run(setup).Metrics.Records;
            Assert.Equal(0.15, records[0].Ttft, 9);
            Assert.Equal(0.35, records[0].E2e, 9);
            Assert.Equal(0.15, records[1].Ttft, 9);
            Assert.Equal(0.25, records[1].E2e, 9);
        }
        finally { File.Delete(path); }
    }

    private sealed class IdleRecording(double seconds) : IIterationTimeModel
    {
        public List<double> Idle { get; } = [];
        public double StepSeconds(OServe.Engine.Scheduling.SchedulerOutput output) => seconds;
        public double StepSeconds(OServe.Engine.Scheduling.SchedulerOutput output, double idleSeconds)
        {
            Idle.Add(idleSeconds);
            return seconds;
        }
    }
}
