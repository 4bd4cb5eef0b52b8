using OServe.Engine.Benchmarking;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

/// <summary>Replays the head of the real Azure trace in shared/ (skipped where shared/ is absent).</summary>
public sealed class SharedTraceReplayTests
{
    private static string? SharedTrace(string name) => EndToEnd.SharedData.Path("traces", "azure2023", name);

    [SkippableFact]
    public async Task TheAzureConversationTraceHeadIsReplayedWithExactLengths()
    {
        var path = SharedTrace("AzureLLMInferenceTrace_conv.csv");
        Skip.If(path is null, "shared/traces/azure2023/AzureLLMInferenceTrace_conv.csv not found next to the repository");
        await using var server = FakeOpenAiServer.Start();
        var options = new BenchOptions
        {
            BaseUrl = server.BaseUrl,
            Model = "fake",
            Dataset = BenchDataset.Trace,
            DatasetPath = path,
            NumPrompts = 12,
            TimeScale = 0.01,
            SkipInitialTest = true,
        };
        var planned = BenchWorkload.Build(options).Requests;
        var result = await BenchRunner.RunAsync(options);

        Assert.Equal(12, result.Completed);
        Assert.Equal(0, result.NumPromptLenMismatches);
        Assert.Equal(planned.Sum(r => (long)r.InputLen), result.TotalInputTokens);
        Assert.Equal(planned.Sum(r => (long)r.OutputLen), result.TotalOutputTokens);
        Assert.Equal(374, planned[0].InputLen); // the trace's first row
        Assert.True(result.Duration >= planned[^1].ArrivalSec - 0.002, $"duration {result.Duration}, last arrival {planned[^1].ArrivalSec}");
    }
}
