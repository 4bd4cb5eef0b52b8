using System.Runtime.CompilerServices;
using OServe.Engine.Demo;
using OServe.Engine.Execution;
using Xunit;

namespace OServe.Engine.Tests.Demo;

public sealed class EngineProbeTests
{
    /// <summary>
    /// Serves each request in a fixed time, slow for the first <see cref="SlowRequests"/> requests
    /// it ever gets (a pause of the machine during calibration's first burst) and fast after.
    /// </summary>
    private sealed class StallingEngine : IInferenceEngine
    {
        private int _served;
        public int SlowRequests { get; init; }
        public TimeSpan Slow { get; init; }
        public TimeSpan Fast { get; init; }
        public int Requests => Volatile.Read(ref _served);
        public string ModelName => "stalling";
        public int MaxModelLength => 4096;
        public int? VocabSize => 100;
        public IReadOnlyList<int> Encode(string text, bool addBos) => [1];
        public EngineSnapshot Snapshot() => new(0, 0, 0, 0, 0);

        public async IAsyncEnumerable<GenerationEvent> GenerateAsync(GenerationRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            int n = Interlocked.Increment(ref _served);
            await Task.Delay(n <= SlowRequests ? Slow : Fast, cancellationToken);
            yield return new GenerationEvent(request.RequestId, 7, "x", FinishReason.Length, request.PromptTokens.Count, 1);
        }
    }

    [Fact]
    public async Task A_burst_slowed_by_a_stall_does_not_set_the_calibrated_throughput()
    {
        var engine = new StallingEngine { SlowRequests = 8, Slow = TimeSpan.FromMilliseconds(800), Fast = TimeSpan.FromMilliseconds(20) };

        double best = await EngineProbe.BestBurstRpsAsync(engine, count: 8, input: 4, output: 1, repeats: 3, CancellationToken.None);

        Assert.Equal(24, engine.Requests); // three bursts of eight
        Assert.True(best > 8 / 0.4, $"best of three bursts read {best:F1} req/s: the stalled first burst (8 in >= 0.8 s) set it");
    }

    [Fact]
    public async Task One_repeat_is_one_burst()
    {
        var engine = new StallingEngine { SlowRequests = 8, Slow = TimeSpan.FromMilliseconds(300), Fast = TimeSpan.FromMilliseconds(1) };

        double rps = await EngineProbe.BestBurstRpsAsync(engine, count: 8, input: 4, output: 1, repeats: 1, CancellationToken.None);

        Assert.Equal(8, engine.Requests);
        Assert.True(rps < 8 / 0.3 + 1e-9, $"{rps:F1} req/s from a burst that took at least 0.3 s");
    }
}
