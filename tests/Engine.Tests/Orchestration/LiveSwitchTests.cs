using System.Collections.Concurrent;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Orchestration;

/// <summary>
/// Switches under continuous streaming load through the real server: every request answers once,
/// completely, with the same greedy text as without a switch.
/// </summary>
public sealed class LiveSwitchTests
{
    [Theory]
    [InlineData(InFlightPolicy.Migrate, 0)]
    [InlineData(InFlightPolicy.Drain, 0)]
    // Every started request has at most 96 + 1 steps left: under Migrate they all finish in place.
    [InlineData(InFlightPolicy.Migrate, 200)]
    public async Task Switching_two_replicas_to_one_and_back_under_load_loses_and_duplicates_nothing(InFlightPolicy inFlight, int finishInPlaceMaxSteps)
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas(), Options(inFlight: inFlight, finishInPlaceMaxSteps: finishInPlaceMaxSteps));
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app), Timeout = TimeSpan.FromMinutes(2) };

        // A first wave that is surely in flight when the switch starts, then a steady trickle during both switches.
        const int maxTokens = 96;
        var sent = new ConcurrentBag<(int Prompt, Task<Streamed> Result)>();
        var started = new List<Task>();
        for (int i = 0; i < 12; i++)
        {
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            sent.Add((i, StreamAsync(http, Prompt(i), maxTokens, first)));
            started.Add(first.Task);
        }
        await Task.WhenAll(started).WaitAsync(TimeSpan.FromSeconds(60));
        using var stopLoad = new CancellationTokenSource();
        var load = Task.Run(async () =>
        {
            for (int i = 12; !stopLoad.IsCancellationRequested; i++)
            {
                sent.Add((i, StreamAsync(http, Prompt(i), 24 + i % 40)));
                await Task.Delay(15);
            }
        });

        var toOne = await runtime.ApplyAsync(OneReplica(2));
        var back = await runtime.ApplyAsync(TwoReplicas(3));
        stopLoad.Cancel();
        await load;
        var results = await Task.WhenAll(sent.Select(async s => (s.Prompt, Result: await s.Result)));

        Assert.Equal(SwitchOutcome.Applied, toOne.Outcome);
        Assert.Equal(SwitchOutcome.Applied, back.Outcome);
        Assert.Equal((2, 1, 2), (toOne.NumStopped, toOne.NumStarted, toOne.ToVersion));
        Assert.True(toOne.BytesFromPeers > 0 && toOne.BytesFromStorage == 0, "the new replica copies a running peer's weights");
        if (inFlight == InFlightPolicy.Migrate && finishInPlaceMaxSteps > 0)
        {
            Assert.True(toOne.NumRequestsDrained > 0, "the first wave had started, with at most 97 steps left, and must have finished in place");
            Assert.Equal(0, toOne.KvBytesMoved); // what moved had not started: no KV to carry
            Assert.Contains(toOne.Events, e => e.Kind == OServe.Contracts.SwitchStepKind.Drain);
        }
        else if (inFlight == InFlightPolicy.Migrate)
        {
            Assert.True(toOne.NumRequestsMigrated > 0, "the first wave was in flight and must have moved");
            Assert.True(toOne.KvBytesMoved > 0, "moved requests carry their KV cache");
        }
        else
        {
            Assert.True(toOne.NumRequestsDrained > 0, "the first wave was in flight and must have drained on the old replicas");
            Assert.Equal(0, toOne.NumRequestsMigrated);
        }
        Assert.Equal(3, runtime.Current.Version);
        Assert.Equal(["a", "b"], runtime.Replicas.Select(r => r.Id));

        // Every request under load counts once, across both switches (before the reference requests below add their own).
        // A counter may trail its response by a moment, so poll briefly.
        string expected = $"oserve:request_success_total{{model_name=\"tiny\",finished_reason=\"length\"}} {results.Length}";
        var metrics = await http.GetStringAsync("/metrics");
        for (int i = 0; i < 50 && !metrics.Contains(expected, StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
            metrics = await http.GetStringAsync("/metrics");
        }
        Assert.Contains("oserve:plan_switches_total{model_name=\"tiny\",outcome=\"applied\"} 2", metrics);
        Assert.Contains("oserve:plan_version{model_name=\"tiny\"} 3", metrics);
        Assert.True(metrics.Contains(expected, StringComparison.Ordinal),
            $"expected '{expected}' ({results.Length} requests under load); /metrics has: " +
            string.Join(" | ", metrics.Split('\n').Where(l => l.StartsWith("oserve:request_success_total", StringComparison.Ordinal))));

        // Reference: the same requests, one at a time, with no switch.
        foreach (var (prompt, result) in results)
        {
            Assert.Equal(["length"], result.FinishReasons);
            Assert.Equal(1, result.NumDone);
            int asked = prompt < 12 ? maxTokens : 24 + prompt % 40;
            var alone = await StreamAsync(http, Prompt(prompt), asked);
            await AssertSameAsAloneAsync(http, Prompt(prompt), asked, result, alone);
        }
        Assert.All(runtime.Replicas, r => Assert.Equal(0, r.Outstanding));
    }

    [Fact]
    public async Task New_replicas_build_together_and_one_failing_discards_the_other_too()
    {
        using var model = TinyModel();
        // One replica on node0/2 -> two on node0/0 and node0/1: both are built at once; the second
        // transfer fails, so the replica the first one built must be stopped and the old plan stay.
        await using var runtime = Start(model, OneReplica(1), Options(new FailingTransfer(failAfter: 1)));
        var before = runtime.Replicas.ToArray();

        var report = await runtime.ApplyAsync(TwoReplicas(2));

        Assert.Equal(SwitchOutcome.RolledBack, report.Outcome);
        Assert.Contains("injected failure", report.Error);
        Assert.Contains(report.Events, e => e.Kind == OServe.Contracts.SwitchStepKind.Stop && e.Detail.Contains("1 new replica(s) discarded", StringComparison.Ordinal));
        Assert.Equal(before, runtime.Replicas);
        Assert.Equal(1, runtime.Current.Version);
        Assert.All(runtime.Devices.Devices.Where(d => d.Id != "node0/2"), d => Assert.Equal(0, d.HeldBytes));
    }

    [Fact]
    public async Task The_new_replicas_of_a_switch_are_built_at_the_same_time()
    {
        using var model = TinyModel();
        var transfer = new OverlapTransfer();
        await using var runtime = Start(model, OneReplica(1), Options(transfer));
        var report = await runtime.ApplyAsync(TwoReplicas(2));
        Assert.Equal(SwitchOutcome.Applied, report.Outcome);
        Assert.Equal(2, transfer.MaxInFlight);
    }

    /// <summary>Holds each build until a second one is in flight (at most 10 s), and records how many overlapped.</summary>
    private sealed class OverlapTransfer : IShardTransfer
    {
        private int _inFlight;
        public int MaxInFlight;

        public OServe.Models.Parallelism.ParallelLlama Build(OServe.Models.Llama.LlamaConfig config, IReadOnlyList<OServe.Models.Parallelism.PoolDevice> devices, int tp, int pp,
            IWeightStore storage, TorchSharp.torch.ScalarType dtype, bool copyFromPeers)
        {
            int now = Interlocked.Increment(ref _inFlight);
            InterlockedMax(now);
            SpinWait.SpinUntil(() => Volatile.Read(ref MaxInFlight) >= 2, TimeSpan.FromSeconds(10));
            try { return ShardTransfer.Instance.Build(config, devices, tp, pp, storage, dtype, copyFromPeers); }
            finally { Interlocked.Decrement(ref _inFlight); }
        }

        private void InterlockedMax(int value)
        {
            int seen;
            while (value > (seen = Volatile.Read(ref MaxInFlight)) && Interlocked.CompareExchange(ref MaxInFlight, value, seen) != seen) { }
        }
    }

    [Fact]
    public async Task A_failure_while_copying_weights_rolls_back_and_the_old_plan_keeps_serving()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas(), Options(new FailingTransfer()));
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app) };
        var before = runtime.Replicas.ToArray();
        var inFlight = StreamAsync(http, Prompt(1), 64);

        var report = await runtime.ApplyAsync(OneReplica(2));

        Assert.Equal(SwitchOutcome.RolledBack, report.Outcome);
        Assert.Contains("injected failure", report.Error);
        Assert.Equal(1, report.ToVersion);
        Assert.Equal(1, runtime.Current.Version);
        Assert.Equal(before, runtime.Replicas);
        var finished = await inFlight;
        Assert.Equal(["length"], finished.FinishReasons);
        var after = await StreamAsync(http, Prompt(2), 8);
        Assert.Equal(["length"], after.FinishReasons);
        Assert.Equal(1, runtime.Metrics.NumRolledBack);
        Assert.Contains("outcome=\"rolled_back\"} 1", await http.GetStringAsync("/metrics"));
    }

    [Fact]
    public async Task A_replica_kept_by_the_new_plan_is_not_rebuilt_and_only_the_new_one_copies_weights()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, OneReplica(1) with { Replicas = [Replica("x", "node0/0")],
            Routing = [new() { Type = "short", Weights = new Dictionary<string, double> { ["x"] = 1 } },
                new() { Type = "long", Weights = new Dictionary<string, double> { ["x"] = 1 } }] });
        var kept = runtime.Replicas[0];

        var report = await runtime.ApplyAsync(TwoReplicas(2));

        Assert.Equal((1, 1, 0), (report.NumKept, report.NumStarted, report.NumStopped));
        Assert.Same(kept, runtime.Replicas[0]);
        Assert.Equal("a", kept.Id);
        Assert.Equal(report.BytesFromPeers, runtime.Builder.WeightBytes);
    }
}
