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
        string text = output.ToString();
        var rows = text.Split('\n')
            .Where(l => SwitchBenchmark.Changes.Any(c => l.StartsWith(c.Name + " ", StringComparison.Ordinal)))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToList();
        Assert.Equal(SwitchBenchmark.Changes.Count, rows.Count);
        Assert.All(rows, r =>
        {
            Assert.True(r[^3].EndsWith('x'), text); // cache/hot
            Assert.True(r[^1] == "0.0", text); // hot switches read nothing from storage
        });
    }
}
