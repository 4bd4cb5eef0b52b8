using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Orchestration;

/// <summary>
/// A request sampled with a seed draws one number of its stream per token. Moved by a live switch,
/// or resumed elsewhere from its streamed tokens, it must go on drawing where it stopped: the answer
/// is then the one it would have had unmoved. Without top-p: a draw then walks the vocabulary in
/// index order, so the float noise of another batch's sums moves a boundary by ~1e-7 and almost
/// never the token; with top-p the near-uniform tiny model sorts thousands of near-equal
/// probabilities, and that order flipped a token in about one request of eight.
/// </summary>
public sealed class SeededSamplingTests
{
    private static SamplingParams Sampled(ulong seed, int maxTokens) =>
        new() { MaxTokens = maxTokens, Temperature = 0.9f, Seed = seed, IgnoreEos = true };

    private static int[] PromptOf(int i) => Enumerable.Range(0, 12).Select(k => 3 + (i * 31 + k * 7) % 200).ToArray();

    /// <summary>Tokens a request has streamed so far (read when the switch begins, for the failure message).</summary>
    private sealed class Box
    {
        public int Value;
    }

    private static async Task<List<int>> TokensAsync(IInferenceEngine engine, GenerationRequest request, TaskCompletionSource? first = null, Box? count = null)
    {
        var tokens = new List<int>();
        await foreach (var e in engine.GenerateAsync(request, CancellationToken.None))
            if (e.TokenId >= 0)
            {
                tokens.Add(e.TokenId);
                if (count is not null) Interlocked.Increment(ref count.Value);
                first?.TrySetResult();
            }
        return tokens;
    }

    [Fact]
    public async Task A_seeded_request_moved_by_a_switch_samples_what_it_would_have_unmoved()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas(), Options());
        const int maxTokens = 64;
        var running = new List<Task<List<int>>>();
        var started = new List<Task>();
        var counts = new List<Box>();
        for (int i = 0; i < 8; i++)
        {
            var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var request = new GenerationRequest($"moved-{i}", PromptOf(i), Sampled(100 + (ulong)i, maxTokens));
            var counter = new Box();
            counts.Add(counter);
            running.Add(Task.Run(() => TokensAsync(runtime, request, first, counter)));
            started.Add(first.Task);
        }
        await Task.WhenAll(started).WaitAsync(TimeSpan.FromSeconds(60));
        int[] atSwitch = counts.Select(c => Volatile.Read(ref c.Value)).ToArray();
        var report = await runtime.ApplyAsync(OneReplica(2));
        var moved = await Task.WhenAll(running);
        Assert.Equal(SwitchOutcome.Applied, report.Outcome);
        Assert.True(report.NumRequestsMigrated > 0, "the requests were in flight and must have moved");

        // The same requests one at a time on the new plan, nothing moving.
        for (int i = 0; i < moved.Length; i++)
        {
            var alone = await TokensAsync(runtime, new GenerationRequest($"alone-{i}", PromptOf(i), Sampled(100 + (ulong)i, maxTokens)));
            Assert.Equal(maxTokens, moved[i].Count);
            int d = 0;
            while (d < alone.Count && alone[d] == moved[i][d]) d++;
            Assert.True(d == alone.Count, $"request {i} ({atSwitch[i]} tokens when the switch began) parts from its unmoved answer at token {d}");
        }
    }

    [Fact]
    public async Task A_seeded_request_resumed_from_its_streamed_tokens_continues_its_stream()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, OneReplica(1), Options());
        const int maxTokens = 40, streamed = 15;
        var whole = await TokensAsync(runtime, new GenerationRequest("whole", PromptOf(3), Sampled(7, maxTokens)));
        // As the cluster's front end resumes a request whose worker died: prompt and streamed tokens, the rest to go.
        var resumed = await TokensAsync(runtime, new GenerationRequest("resumed", [.. PromptOf(3), .. whole.Take(streamed)],
            Sampled(7, maxTokens - streamed) with { SeedStreamOffset = streamed }));
        Assert.Equal(whole.Skip(streamed), resumed);
        // Restarting the stream instead samples another continuation.
        var restarted = await TokensAsync(runtime, new GenerationRequest("restarted", [.. PromptOf(3), .. whole.Take(streamed)], Sampled(7, maxTokens - streamed)));
        Assert.NotEqual(whole.Skip(streamed), restarted);
    }
}
