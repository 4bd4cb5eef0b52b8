using OServe.Models.Parallelism;
using Xunit;

namespace OServe.Models.Tests.Parallelism;

/// <summary>Runs the switch benchmark on a toy shape to pin its output; asserts no timings.</summary>
public sealed class SwitchBenchmarkTests
{
    [Fact]
    public void PrintsEveryChangeWithItsRatioAndNoStorageReadsWhenHot()
    {
        var options = new SwitchBenchmarkOptions { Dim = 32, HiddenDim = 48, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, VocabSize = 64, Repeats = 1 };
        var output = new StringWriter();
        Assert.Equal(0, SwitchBenchmark.Run(options, output));
        var rows = output.ToString().Split('\n')
            .Where(l => SwitchBenchmark.Changes.Any(c => l.StartsWith(c.Name + " ", StringComparison.Ordinal)))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToList();
        Assert.Equal(SwitchBenchmark.Changes.Count, rows.Count);
        Assert.All(rows, r =>
        {
            Assert.EndsWith("x", r[^2]);
            Assert.Equal("0.0", r[^1]); // hot switches read nothing from storage
        });
    }
}
