using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using Xunit;
using static OServe.Engine.Tests.Distributed.ClusterServingTests;

namespace OServe.Engine.Tests.Distributed;

/// <summary>A worker that stays dead: the controller asks the CP-SAT planner for a deployment of the devices left.</summary>
public sealed class ClusterReplanTests
{
    private static readonly string[] Nodes = ["node0", "node1", "node2"];

    private static ReplanSettings Settings(Cluster hardware, TimeSpan grace)
    {
        using var model = LocalCluster.TinyModel();
        return new ReplanSettings { Hardware = hardware, Model = ModelCardOf.Llama(model.Config, LocalCluster.ModelName, model.Model.DType), Grace = grace };
    }

    private static Cluster Hardware(int devicesPerNode) => new()
    {
        Name = "c",
        GpuTypes = [new GpuType { Name = "cpu-logical", MemoryGib = 4, Tflops = 0.1, HbmGbps = 20 }],
        Nodes = Nodes.Select(n => new Node { Name = n, GpuType = "cpu-logical", Gpus = devicesPerNode, IntraLinkGbps = 10 }).ToArray(),
        InterNodeLinkGbps = 1,
    };

    /// <summary>Every replica on one of <paramref name="live"/>, every type routed to a replica of the plan.</summary>
    private static void AssertOnlyOn(Plan plan, params string[] live)
    {
        Assert.NotEmpty(plan.Replicas);
        foreach (var r in plan.Replicas)
        {
            var on = Assert.Single(r.Devices.Select(ReplicaShape.NodeOf).Distinct());
            Assert.Contains(on, live);
        }
        var ids = plan.Replicas.Select(r => r.Id).ToHashSet();
        Assert.All(plan.RequestTypes, t => Assert.Contains(plan.Routing.Single(e => e.Type == t.Name).Weights, kv => kv.Value > 0 && ids.Contains(kv.Key)));
    }

    [Fact]
    public void The_replanner_plans_the_live_workers_devices_only_and_gives_the_same_plan_every_time()
    {
        var target = PlanOf("c", 1, Replica("r0", "node0/0"), Replica("r1", "node1/0"), Replica("r2", "node2/0"));
        var inForce = PlanRestriction.Restrict(target, new HashSet<string> { "r0", "r2" }, 2);
        var settings = Settings(Hardware(2), TimeSpan.Zero);
        var (plan, record, error) = ClusterReplanner.Plan(settings, target, inForce, ["node0", "node2"], ["node1"], [3.0, 0.5], "observed");
        Assert.Null(error);
        AssertOnlyOn(plan!, "node0", "node2");
        Assert.Equal("cpsat", plan!.Planner);
        Assert.Equal("node1 dead: re-planned on 4 devices of node0,node2", record!.Reason);
        Assert.Equal("r0 tp1xpp1@node0/0, r2 tp1xpp1@node2/0", record.Replaced);
        Assert.Equal("observed: short 3/s, long 0.5/s", record.Workload);
        // Deterministic time and a fixed seed: the same deployment again, whatever the machine's load.
        var again = ClusterReplanner.Plan(settings, target, inForce, ["node0", "node2"], ["node1"], [3.0, 0.5], "observed").Plan!;
        Assert.True(PlanRestriction.SameDeployment(plan, again), $"{ClusterReplanner.Describe(plan)} vs {ClusterReplanner.Describe(again)}");
        // No live worker of the cluster: an error that says so, no plan.
        var none = ClusterReplanner.Plan(settings, target, null, ["node9"], ["node0", "node1", "node2"], null, "declared");
        Assert.Null(none.Plan);
        Assert.Contains("no live worker is a node of cluster 'c'", none.Error);
    }

    [Fact]
    public void A_report_the_controller_never_got_goes_out_with_the_next()
    {
        var reporter = new ArrivalReporter();
        var plan = PlanOf("c", 1, Replica("r0", "node0/0"));
        reporter.Follow(plan);
        int types = plan.RequestTypes.Count;
        reporter.Record(16, 16);
        reporter.Record(16, 16);
        var first = reporter.TakeReport()!;
        Assert.Equal(2, first.Counts.Sum());
        reporter.Unsent(first); // delivery failed
        reporter.Record(16, 16);
        var next = reporter.TakeReport()!;
        Assert.Equal(3, next.Counts.Sum());
        Assert.Equal(types, next.Counts.Length);
        Assert.True(next.Seconds >= first.Seconds);
        Assert.Equal(0, reporter.TakeReport()!.Counts.Sum()); // sent once, not again
    }

    [Fact]
    public void Observed_arrivals_are_summed_over_front_ends_within_the_window()
    {
        var arrivals = new ObservedArrivals(TimeSpan.FromSeconds(60));
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        Assert.Null(arrivals.Rates(["short", "long"], t0));
        arrivals.Add(new ArrivalReport("a", ["short", "long"], [10, 2], 5), t0);
        arrivals.Add(new ArrivalReport("a", ["short", "long"], [20, 3], 5), t0.AddSeconds(5));
        arrivals.Add(new ArrivalReport("b", ["long", "short"], [5, 0], 10), t0.AddSeconds(5)); // its own type order
        var (rates, seconds) = arrivals.Rates(["short", "long"], t0.AddSeconds(5))!.Value;
        Assert.Equal([30 / 10.0, 5 / 10.0 + 5 / 10.0], rates);
        Assert.Equal(10, seconds);
        // A minute later the first report has left the window.
        (rates, _) = arrivals.Rates(["short", "long"], t0.AddSeconds(64))!.Value;
        Assert.Equal([20 / 5.0, 3 / 5.0 + 0.5], rates);
    }

    [Fact]
    public async Task A_re_activated_controller_observes_the_workload_its_predecessor_stored()
    {
        await using var cluster = await LocalCluster.StartAsync(["node0", "node1"],
            controller: new ControllerSettings { ArrivalsStoreInterval = TimeSpan.FromMilliseconds(100) });
        // No front end: this test is the only one to report, so what the controller shows is what it stored.
        var client = await cluster.ConnectAsync();
        var controller = client.GetGrain<IClusterControllerGrain>(cluster.ClusterId);
        await controller.Initialize(ContractYaml.Write(PlanOf(cluster.ClusterId, 1, Replica("r0", "node0/0"))), 0);
        Assert.Null((await controller.GetPlan()).Observed);
        await controller.ReportArrivals(new ArrivalReport("fe", ["short", "long"], [20, 4], 10));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string? observed;
        while ((observed = (await controller.GetPlan()).Observed) is null && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        Assert.Equal("short 2.00/s, long 0.40/s over 10 s", observed);
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // a few reconciles: stored

        await controller.Cast<Orleans.Core.Internal.IGrainManagementExtension>().DeactivateOnIdle();
        // The next call activates it afresh, from storage.
        Assert.Equal("short 2.00/s, long 0.40/s over 10 s", (await controller.GetPlan()).Observed);
    }

    [Fact]
    public void Re_plans_keep_each_replica_on_one_worker_unless_told_they_may_split_it()
    {
        var target = PlanOf("c", 1, Replica("r0", "node0/0"));
        var (request, _) = ClusterReplanner.Request(Settings(Hardware(1), TimeSpan.Zero), target, null, Nodes, null, 60, 0);
        Assert.Equal(ConstraintKind.NoCrossNodePp, Assert.Single(request!.ConstraintSpecs).Kind);
        (request, _) = ClusterReplanner.Request(Settings(Hardware(1), TimeSpan.Zero) with { CrossNodePipelines = true }, target, null, Nodes, null, 60, 0);
        Assert.Empty(request!.ConstraintSpecs);

        // The workers serve a replica across nodes while every one of them is live.
        var split = PlanOf("c", 2, Replica("split", "node0/0", "node2/0") with { Tp = 1, Pp = 2 });
        Assert.Null(ClusterReplanner.OffLiveWorkers(split, ["node0", "node2"]));
        Assert.Equal("planner: replica split on node0/0,node2/0 uses worker node2, which is not live", ClusterReplanner.OffLiveWorkers(split, ["node0", "node1"]));
        var across = PlanOf("c", 2, Replica("across", "node0/0", "node2/0"));
        Assert.Contains("stage 0 has its tp ranks on nodes node0 and node2", ClusterReplanner.OffLiveWorkers(across, Nodes));
    }

    [Fact]
    public void A_controller_restored_from_its_stored_reports_observes_what_the_one_before_did()
    {
        var t0 = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var before = new ObservedArrivals(TimeSpan.FromSeconds(60));
        before.Add(new ArrivalReport("a", ["short", "long"], [10, 2], 5), t0);
        before.Add(new ArrivalReport("a", ["short", "long"], [20, 3], 5), t0.AddSeconds(30));
        before.Add(new ArrivalReport("b", ["long", "short"], [5, 0], 10), t0.AddSeconds(40));
        var stored = before.Snapshot(t0.AddSeconds(45));
        Assert.Equal([t0, t0.AddSeconds(30), t0.AddSeconds(40)], stored.Select(s => s.At));

        // Re-activated 20 s later: the first report has left the window, the rest plan as before.
        var now = t0.AddSeconds(65);
        var after = new ObservedArrivals(TimeSpan.FromSeconds(60));
        Assert.Equal(2, after.Restore(stored, now));
        Assert.Equal(before.Rates(["short", "long"], now)!.Value.Rates, after.Rates(["short", "long"], now)!.Value.Rates);
        Assert.Null(new ObservedArrivals(TimeSpan.FromSeconds(60)).Rates(["short", "long"], now)); // without them: nothing observed
        Assert.Equal(0, after.Restore(null, now));
    }

    [Fact]
    public async Task A_worker_that_stays_dead_is_replanned_around_with_cpsat_on_the_live_devices_and_no_request_is_lost()
    {
        var grace = TimeSpan.FromSeconds(1);
        // The hardware names the test cluster's nodes; the controller plans under the target's cluster name.
        await using var cluster = await LocalCluster.StartAsync(Nodes, controller: new ControllerSettings { Replan = Settings(Hardware(2), grace) });
        var plan = PlanOf(cluster.ClusterId, 1, Replica("r0", "node0/0"), Replica("r1", "node1/0"), Replica("r2", "node2/0"));
        // Arrivals reported every half second, so the re-plan is for the observed workload, not the plan's declared rates.
        await using var frontEnd = await cluster.FrontEndAsync(plan,
            new FrontEndOptions { PlanPollInterval = TimeSpan.FromMilliseconds(100), ArrivalReportInterval = TimeSpan.FromMilliseconds(500) });
        await LocalCluster.WaitForReplicasAsync(frontEnd, "r0", "r1", "r2");

        const int maxTokens = 40;
        var requests = Enumerable.Range(0, 9).Select(i => Greedy($"p{i}", i, maxTokens)).ToArray();
        var streams = await StartStreamsAsync(frontEnd, requests, startedAfter: 2);
        await cluster.CrashAsync("node1");
        // And a steady trickle from the crash until after the switch to the re-planned plan (its replaced replicas drain and unload).
        using var stopTrickle = new CancellationTokenSource();
        var trickle = Task.Run(async () =>
        {
            var sent = new List<(GenerationRequest Request, Task<int[]> Tokens)>();
            for (int i = 0; !stopTrickle.IsCancellationRequested; i++)
            {
                var r = Greedy($"t{i}", 100 + i, 16);
                sent.Add((r, Task.Run(() => TokensAsync(frontEnd, r))));
                await Task.Delay(TimeSpan.FromMilliseconds(250));
            }
            return sent;
        });

        // Declared dead, dead for the grace period: the planner's plan on node0 and node2 is in force.
        await LocalCluster.WaitForAsync(frontEnd, f => f.View.Replan is not null && f.Current is { } p && p.Planner == "cpsat",
            "the re-planned plan in force", TimeSpan.FromSeconds(60));
        var replanned = frontEnd.Current!;
        AssertOnlyOn(replanned, "node0", "node2");
        Assert.Equal("node1 dead: re-planned on 4 devices of node0,node2", frontEnd.View.Replan!.Reason);
        Assert.DoesNotContain("node1", frontEnd.View.Replan.Replaced);
        // The controller's arrivals live in its activation: when the dead worker hosted it, the controller
        // re-activated elsewhere plans for the reports that reached it since, or the plan's declared
        // rates when none has yet (the replanner's unit test pins the observed case deterministically).
        Assert.Matches("^(observed by the front ends over|declared by the plan)", frontEnd.View.Replan.Workload);
        // LastEvent is only the latest event: by now it may be a later load or unload (a fresh-clone CI
        // run saw "loaded r0 on node0 from worker node2"). When it is still the install, it names the re-plan.
        if (frontEnd.View.LastEvent is { } last && last.StartsWith("plan in force", StringComparison.Ordinal))
            Assert.Contains("re-planned", last);

        await Task.Delay(TimeSpan.FromSeconds(2)); // past the unload grace of the replaced replicas
        await stopTrickle.CancelAsync();

        // Every request, those on node1 at the crash and those sent through the switch, streamed all its tokens, as one process would have.
        var outputs = await Task.WhenAll(streams);
        var reference = await ReferenceAsync(requests);
        for (int i = 0; i < requests.Length; i++)
            Assert.Equal(reference[i], outputs[i]);
        var trickled = await trickle;
        var trickleReference = await ReferenceAsync(trickled.Select(t => t.Request));
        for (int i = 0; i < trickled.Count; i++)
            Assert.Equal(trickleReference[i], await trickled[i].Tokens);
        var after = await TokensAsync(frontEnd, Greedy("after", 11, 8));
        Assert.Equal((await ReferenceAsync([Greedy("after", 11, 8)]))[0], after);

        // node1 comes back: the operator's plan (r0 r1 r2) is restored in full.
        await cluster.StartWorkerAsync("node1");
        await LocalCluster.WaitForReplicasAsync(frontEnd, "r0", "r1", "r2");
        Assert.Null(frontEnd.View.Replan);
        Assert.Equal(ContractYaml.Write(plan), frontEnd.View.TargetYaml);
    }
}
