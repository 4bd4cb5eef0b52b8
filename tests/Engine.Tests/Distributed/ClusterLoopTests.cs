using OServe.Contracts;
using OServe.Engine.Distributed;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using Xunit;
using Xunit.Abstractions;
using static OServe.Engine.Tests.Distributed.ClusterServingTests;

namespace OServe.Engine.Tests.Distributed;

/// <summary>The forecasting controller loop across the cluster: the front ends' counts each window, forecast, CP-SAT, switch.</summary>
public sealed class ClusterLoopTests(ITestOutputHelper output)
{
    private static readonly string[] Nodes = ["node0", "node1"];

    /// <summary>
    /// Two nodes of two logical devices, priced as slow devices (0.001 TFLOPS, 0.2 GB/s) so the tiny
    /// model's plans depend on rates a test can send: from one tp1 replica, 0.5 short/s plans one tp2
    /// on node0, 8/s four tp1 on both nodes (probed with the planner's default coefficients).
    /// </summary>
    private static LoopSettings Settings(TimeSpan window)
    {
        using var model = LocalCluster.TinyModel();
        var hardware = new Cluster
        {
            Name = "c",
            GpuTypes = [new GpuType { Name = "cpu-logical", MemoryGib = 4, Tflops = 0.001, HbmGbps = 0.2 }],
            Nodes = Nodes.Select(n => new Node { Name = n, GpuType = "cpu-logical", Gpus = 2, IntraLinkGbps = 10 }).ToArray(),
            InterNodeLinkGbps = 1,
        };
        return new LoopSettings
        {
            Planning = new ReplanSettings { Hardware = hardware, Model = ModelCardOf.Llama(model.Config, LocalCluster.ModelName, model.Model.DType) },
            Window = window,
        };
    }

    /// <summary>A front end that starts the cluster on one tp1 replica on node0, polling the plan every 0.1 s and reporting arrivals every 0.25 s.</summary>
    private static Task<ClusterRuntime> OneReplicaFrontEndAsync(LocalCluster cluster) =>
        cluster.FrontEndAsync(PlanOf(cluster.ClusterId, 1, Replica("r0", "node0/0")),
            new FrontEndOptions { PlanPollInterval = TimeSpan.FromMilliseconds(100), ArrivalReportInterval = TimeSpan.FromMilliseconds(250) });

    private static (LoopRecord Record, Plan? Apply) OneWindow(double shortRate, Plan inForce)
    {
        var loop = new ClusterLoop(Settings(TimeSpan.FromSeconds(2)));
        long count = (long)Math.Round(shortRate * 2), first = (count + 1) / 2; // over the 2 s window, in two reports
        loop.Add(new ArrivalReport("fe", ["short", "long"], [first, 0], 1));
        loop.Add(new ArrivalReport("fe", ["long", "short"], [0, count - first], 1)); // a second report, its own type order
        return loop.Step(inForce, Nodes);
    }

    [Fact]
    public void A_window_plans_the_forecast_on_the_live_workers_and_decides_the_same_every_time()
    {
        var one = PlanOf("c", 1, Replica("r0", "node0/0"));
        var (busy, apply) = OneWindow(8, one);
        Assert.Equal("switch", busy.Decision);
        Assert.Equal("short 8/s, long 0/s", busy.Observed);
        Assert.Equal(4, apply!.Replicas.Count);
        Assert.Equal(["node0", "node1"], apply.Replicas.Select(r => ReplicaShape.NodeOf(r.Devices[0])).Distinct().Order());
        Assert.Equal("cpsat", apply.Planner);
        // Counts and plan alone decide (deterministic CP-SAT, no clock): the same plan again.
        var again = OneWindow(8, one).Apply!;
        Assert.True(PlanRestriction.SameDeployment(apply, again), $"{ClusterReplanner.Describe(apply)} vs {ClusterReplanner.Describe(again)}");
        // A light load plans differently, on node0 alone.
        var (light, lightPlan) = OneWindow(0.5, one);
        Assert.Equal("switch", light.Decision);
        Assert.All(lightPlan!.Replicas, r => Assert.All(r.Devices, d => Assert.StartsWith("node0/", d)));
        // Only the live workers' devices: with node1 not live, nothing lands there.
        var loop = new ClusterLoop(Settings(TimeSpan.FromSeconds(2)));
        loop.Add(new ArrivalReport("fe", ["short", "long"], [16, 0], 2));
        var (_, alone) = loop.Step(one, ["node0"]);
        Assert.All(alone!.Replicas, r => Assert.All(r.Devices, d => Assert.StartsWith("node0/", d)));
        // No arrivals: nothing to plan for, the plan in force stays.
        var (idle, none) = new ClusterLoop(Settings(TimeSpan.FromSeconds(2))).Step(one, Nodes);
        Assert.Equal("skip", idle.Decision);
        Assert.Null(none);
    }

    /// <summary>
    /// The controller grain stores the loop's history every window and a re-activated controller
    /// restores it: the next window is numbered and forecast as if the loop had never stopped.
    /// </summary>
    [Fact]
    public void A_restored_history_forecasts_as_if_the_loop_had_never_stopped()
    {
        var one = PlanOf("c", 1, Replica("r0", "node0/0"));
        var original = new ClusterLoop(Settings(TimeSpan.FromSeconds(2)));
        long[] shortCounts = [2, 6, 14, 20, 26];
        foreach (var c in shortCounts)
        {
            original.Add(new ArrivalReport("fe", ["short", "long"], [c, 1], 1));
            original.Close(one);
        }
        var stored = original.Snapshot()!;
        Assert.Equal(["short", "long"], stored.Types);
        Assert.Equal(5, stored.NextWindow);
        Assert.Equal([1.0, 3.0, 7.0, 10.0, 13.0], stored.Rates[0]);

        var restored = new ClusterLoop(Settings(TimeSpan.FromSeconds(2)));
        Assert.True(restored.Restore(stored));
        var fresh = new ClusterLoop(Settings(TimeSpan.FromSeconds(2)));
        foreach (var loop in new[] { original, restored, fresh })
            loop.Add(new ArrivalReport("fe", ["short", "long"], [32, 1], 1));
        var (window, _, observed, forecast) = original.Close(one);
        var again = restored.Close(one);
        Assert.Equal(5, window);
        Assert.Equal(window, again.Window);
        Assert.Equal(observed, again.Observed);
        Assert.Equal(forecast, again.Forecast);
        // Without the history the trend is unknown: a loop starting afresh forecasts otherwise.
        Assert.NotEqual(forecast[0], fresh.Close(one).Forecast[0]);
    }

    [Fact]
    public async Task A_re_activated_controller_continues_the_loops_windows_from_storage()
    {
        await using var cluster = await LocalCluster.StartAsync(Nodes, controller: new ControllerSettings { Loop = Settings(TimeSpan.FromSeconds(1)) });
        await using var frontEnd = await OneReplicaFrontEndAsync(cluster);
        var client = await cluster.ConnectAsync();
        var controller = client.GetGrain<IClusterControllerGrain>(cluster.ClusterId);
        async Task<LoopRecord> NextRecordAsync(Func<LoopRecord?, bool> done)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                var loop = (await controller.GetPlan()).Loop;
                if (done(loop)) return loop!;
                await Task.Delay(50);
            }
            throw new TimeoutException("the controller's loop record never came");
        }

        var before = await NextRecordAsync(l => l is { Window: >= 2 });
        await controller.Cast<Orleans.Core.Internal.IGrainManagementExtension>().DeactivateOnIdle();
        // A new activation has no record until its first window closes; that window is numbered after the stored ones.
        await NextRecordAsync(l => l is null);
        var after = await NextRecordAsync(l => l is not null);
        output.WriteLine($"before: {before.Describe()}; after re-activation: {after.Describe()}");
        Assert.True(after.Window > before.Window, $"window {after.Window} after re-activation, {before.Window} before: the history was not restored");
    }

    [Fact]
    public void A_stored_history_that_does_not_hold_together_is_ignored()
    {
        var loop = new ClusterLoop(Settings(TimeSpan.FromSeconds(2)));
        Assert.False(loop.Restore(null));
        Assert.False(loop.Restore(new LoopHistory(["short", "long"], 3, [[1, 2, 3]])));            // a type without rates
        Assert.False(loop.Restore(new LoopHistory(["short", "long"], 3, [[1, 2, 3], [1, 2]])));    // ragged
        Assert.False(loop.Restore(new LoopHistory(["short", "long"], 3, [[1, double.NaN, 3], [1, 2, 3]])));
        Assert.False(loop.Restore(new LoopHistory(["short", "long"], 2, [[1, 2, 3], [1, 2, 3]]))); // numbered before its own windows
        Assert.Equal(0, loop.NextWindow);
        Assert.Null(loop.Snapshot());
    }

    [Fact]
    public async Task With_the_loop_on_a_load_one_replica_cannot_serve_switches_the_cluster_to_the_planners_plan_and_no_request_is_lost()
    {
        await using var cluster = await LocalCluster.StartAsync(Nodes, controller: new ControllerSettings { Loop = Settings(TimeSpan.FromSeconds(2)) });
        await using var frontEnd = await OneReplicaFrontEndAsync(cluster);
        await LocalCluster.WaitForReplicasAsync(frontEnd, "r0");

        // Short requests at about 8/s until the switch is in force and 2 s past it (the replaced replica drains and unloads).
        using var stop = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            var sent = new List<(GenerationRequest Request, Task<int[]> Tokens)>();
            for (int i = 0; !stop.IsCancellationRequested && i < 400; i++)
            {
                var r = Greedy($"s{i}", i, 8);
                sent.Add((r, Task.Run(() => TokensAsync(frontEnd, r))));
                await Task.Delay(TimeSpan.FromMilliseconds(125));
            }
            return sent;
        });
        // The loop may switch again later (its forecast moves); the state asserted on is the first one seen with the loop's plan of more replicas in force.
        (Plan InForce, LoopRecord Decided)? seen = null;
        try
        {
            await LocalCluster.WaitForAsync(frontEnd, f =>
            {
                if (f.View.LoopSwitch is { Outcome: var o } decided && o.StartsWith("applied") && f.Current is { Replicas.Count: > 1 } current
                    && decided.Proposed.Contains(ClusterReplanner.Describe(current)))
                    seen = (current, decided);
                return seen is not null;
            }, "the loop's plan with more replicas in force", TimeSpan.FromSeconds(30));
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        finally
        {
            await stop.CancelAsync();
        }
        var (inForce, decided) = seen!.Value;
        output.WriteLine($"switched: {decided.Describe()}; last window: {frontEnd.View.Loop?.Describe()}");
        Assert.Equal("switch", decided.Decision);
        Assert.StartsWith("short ", decided.Observed);
        Assert.DoesNotContain("short 0/s", decided.Forecast);
        Assert.StartsWith("cpsat: " + ClusterReplanner.Describe(inForce), decided.Proposed); // the planner's plan is the one in force
        Assert.True(inForce.Replicas.Count > 1, ClusterReplanner.Describe(inForce));
        Assert.NotNull(frontEnd.View.Loop);
        var json = System.Text.Json.JsonSerializer.Serialize(ClusterPlanEndpoints.Describe(frontEnd), PlanEndpoints.ReportJson);
        Assert.Contains("\"loop_switch\":{\"window\":", json); // GET /v1/cluster's body

        // Every request, before, across and after the switch, streamed all its tokens once, as one process would have.
        var sentRequests = await load;
        var reference = await ReferenceAsync(sentRequests.Select(s => s.Request));
        for (int i = 0; i < sentRequests.Count; i++)
            Assert.Equal(reference[i], await sentRequests[i].Tokens);
    }
}
