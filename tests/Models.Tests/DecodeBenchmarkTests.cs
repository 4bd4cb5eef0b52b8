using OServe.Models.Benchmarks;
using OServe.Models.Parallelism;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests;

/// <summary>Runs the benchmark on a toy shape to pin its output format; asserts no timings.</summary>
public sealed class DecodeBenchmarkTests
{
    [Fact]
    public void PrintsARowPerDtypeAndBatchWithTheBound()
    {
        var options = new DecodeBenchmarkOptions
        {
            Dim = 32, HiddenDim = 64, NumLayers = 1, NumHeads = 4, NumKvHeads = 2, VocabSize = 50,
            ContextTokens = 20, BlockSize = 8, WarmupSteps = 1, Steps = 2, BatchSizes = [1, 3],
            DTypes = [ScalarType.Float32, ScalarType.BFloat16], BandwidthBytes = 1 << 20, Threads = 1,
        };
        var output = new StringWriter();
        Assert.Equal(0, DecodeBenchmark.Run(options, output));
        string text = output.ToString();
        Assert.Contains("memory bandwidth: read (sum)", text);
        var rows = text.Split('\n').Where(l => l.StartsWith("Float32 ", StringComparison.Ordinal) || l.StartsWith("BFloat16 ", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, rows.Count);
        Assert.Contains(rows, r => r.StartsWith("BFloat16", StringComparison.Ordinal) && r.Contains("x", StringComparison.Ordinal) && r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1] == "3");
    }

    [Fact]
    public void RunsAtItsThreadCountWithoutChangingTheProcessDefault()
    {
        // Threads differs from the default on any machine, so a process-wide set would show.
        int processDefault = IntraOpThreads.DefaultForNewThreads();
        var options = new DecodeBenchmarkOptions
        {
            Dim = 32, HiddenDim = 64, NumLayers = 1, NumHeads = 4, NumKvHeads = 2, VocabSize = 50,
            ContextTokens = 20, BlockSize = 8, WarmupSteps = 1, Steps = 1, BatchSizes = [1],
            DTypes = [ScalarType.Float32], BandwidthBytes = 1 << 20, Threads = processDefault + 1,
        };
        int during = 0, after = 0, pinnedAfter = -1;
        var thread = new Thread(() =>
        {
            var output = new StringWriter();
            DecodeBenchmark.Measure(options with
            {
                EngineLoop = _ =>
                {
                    during = get_num_threads();
                    return null!;
                },
            }, output);
            after = get_num_threads();
            pinnedAfter = IntraOpThreads.PinnedCount;
        });
        thread.Start();
        thread.Join();
        Assert.Equal(processDefault + 1, during);
        Assert.Equal(processDefault, after);
        Assert.Equal(0, pinnedAfter);
        Assert.Equal(processDefault, IntraOpThreads.DefaultForNewThreads());
    }
}
