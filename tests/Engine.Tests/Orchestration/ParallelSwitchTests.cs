using System.Collections.Concurrent;
using OServe.Contracts;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using OServe.Models.Parallelism;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Orchestration;

/// <summary>
/// Layout changes (tensor and pipeline parallelism) under continuous streaming load through the
/// real server: requests in flight move with their KV cache re-sliced to the new layout, every
/// request answers once and completely, with the text the same greedy request gets from a
/// deployment that never switched; the new shards come from the old replicas' devices, none from storage.
/// </summary>
public sealed class ParallelSwitchTests
{
    [Fact]
    public async Task Two_tp1_replicas_to_one_tp2_replica_and_back_under_load_loses_and_duplicates_nothing()
    {
        var tp2 = PlanOf(2, Replica("t", "node0/2", "node0/3"));
        var (reports, runtime) = await RunUnderLoadAsync(TwoReplicas(1), [tp2, TwoReplicas(3)]);
        await using (runtime)
        {
            Assert.IsType<ParallelLlama>(runtime.Replicas[0].Model);
            Assert.Equal(["a", "b"], runtime.Replicas.Select(r => r.Id));
        }
        Assert.Equal((2, 1), (reports[0].NumStopped, reports[0].NumStarted));
        Assert.Equal((1, 2), (reports[1].NumStopped, reports[1].NumStarted));
    }

    [Fact]
    public async Task One_tp1_replica_to_a_pp2_replica_under_load_loses_and_duplicates_nothing()
    {
        var pp2 = PlanOf(2, PipelineReplica("p", "node0/1", "node0/2"));
        var (reports, runtime) = await RunUnderLoadAsync(PlanOf(1, Replica("s", "node0/0")), [pp2]);
        await using (runtime)
        {
            var replica = Assert.Single(runtime.Replicas);
            Assert.Equal(2, Assert.IsType<ParallelLlama>(replica.Model).Layout.Pp);
        }
        Assert.Equal((1, 1), (reports[0].NumStopped, reports[0].NumStarted));
    }

    [Fact]
    public async Task A_split_the_model_does_not_allow_is_refused_with_the_field_and_the_reason()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas());
        var tp3 = PlanOf(2, Replica("t", "node0/0", "node0/1", "node0/2"));

        var error = await Assert.ThrowsAsync<PlanRejectedException>(() => runtime.ApplyAsync(tp3));

        Assert.Contains("replicas[0].tp", error.Message);
        Assert.Contains("does not divide the model's 4 attention heads", error.Message);
        Assert.Equal(1, runtime.Current.Version);
    }

    [Fact]
    public async Task The_comparison_with_the_one_at_a_time_answer_fails_on_a_repeated_token_and_passes_the_same_text()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas());
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app), Timeout = TimeSpan.FromMinutes(1) };
        var alone = await StreamAsync(http, Prompt(3), 24);

        Assert.False(await AssertSameAsAloneAsync(http, Prompt(3), 24, alone, alone));
        // A token streamed twice (what a careless migration would do): the texts part where the
        // reference was sure of its token, so it is no tie and the comparison fails.
        int cut = alone.Text.Length / 2;
        var repeated = alone with { Text = alone.Text[..cut] + alone.Text[(cut - 3)..] };
        var error = await Assert.ThrowsAsync<Xunit.Sdk.TrueException>(() => AssertSameAsAloneAsync(http, Prompt(3), 24, repeated, alone));
        Assert.Contains("not a tie", error.Message);
    }

    /// <summary>
    /// Starts <paramref name="start"/>, puts a first wave in flight and a steady trickle on, applies
    /// <paramref name="switches"/> in turn, then checks every answer against a runtime that never switched.
    /// </summary>
    private static async Task<(SwitchReport[] Reports, PlanRuntime Runtime)> RunUnderLoadAsync(Plan start, Plan[] switches)
    {
        var model = TinyModel();
        var runtime = Start(model, start);
        var app = await ServeAsync(runtime);
        var reports = new List<SwitchReport>();
        (int Prompt, Streamed Result)[] results;
        using (var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app), Timeout = TimeSpan.FromMinutes(2) })
        {
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
                    sent.Add((i, StreamAsync(http, Prompt(i), MaxTokensOf(i))));
                    await Task.Delay(15);
                }
            });
            foreach (var plan in switches)
                reports.Add(await runtime.ApplyAsync(plan));
            stopLoad.Cancel();
            await load;
            results = await Task.WhenAll(sent.Select(async s => (s.Prompt, Result: await s.Result)));
            Assert.Equal(results.Length, results.Select(r => r.Prompt).Distinct().Count());
            Assert.All(runtime.Replicas, r => Assert.Equal(0, r.Outstanding));
        }
        await app.DisposeAsync();

        foreach (var report in reports)
        {
            Assert.True(report.Outcome == SwitchOutcome.Applied, $"switch to v{report.ToVersion}: {report.Outcome} {report.Error}");
            Assert.True(report.BytesFromPeers > 0, $"switch to v{report.ToVersion} copies shards from the devices holding them");
            Assert.Equal(0, report.BytesFromStorage);
        }
        Assert.True(reports[0].NumRequestsMigrated > 0, "the first wave was in flight and must have moved");
        Assert.True(reports[0].KvBytesMoved > 0, "moved requests carry their KV cache into the new layout");

        // Reference: the same requests, one at a time, on the starting plan with no switch.
        await using (var reference = Start(model, start))
        await using (var referenceApp = await ServeAsync(reference))
        using (var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(referenceApp), Timeout = TimeSpan.FromMinutes(2) })
        {
            foreach (var (prompt, result) in results)
            {
                Assert.Equal(["length"], result.FinishReasons);
                Assert.Equal(1, result.NumDone);
                int maxTokens = prompt < 12 ? 96 : MaxTokensOf(prompt);
                var alone = await StreamAsync(http, Prompt(prompt), maxTokens);
                await AssertSameAsAloneAsync(http, Prompt(prompt), maxTokens, result, alone);
            }
        }
        model.Dispose();
        return (reports.ToArray(), runtime);
    }

    private static int MaxTokensOf(int prompt) => 24 + prompt % 40;
}
