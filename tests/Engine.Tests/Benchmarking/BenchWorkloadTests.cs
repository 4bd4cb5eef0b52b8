using OServe.Engine.Benchmarking;
using OServe.Planner.Workload;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

public sealed class BenchWorkloadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-bench-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteFile(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static BenchOptions Options(string? tracePath = null) => new()
    {
        BaseUrl = new Uri("http://127.0.0.1:1"),
        Model = "m",
        Dataset = tracePath is null ? BenchDataset.Random : BenchDataset.Trace,
        DatasetPath = tracePath,
    };

    [Fact]
    public void RandomLengthsStayInTheRangeAndTheSeedFixesThem()
    {
        var options = Options() with { NumPrompts = 500, RandomInputLen = 100, RandomOutputLen = 10, RandomRangeRatio = 0.5, Seed = 3 };
        var requests = BenchWorkload.Build(options).Requests;
        Assert.Equal(500, requests.Length);
        Assert.All(requests, r => Assert.InRange(r.InputLen, 50, 150));
        Assert.All(requests, r => Assert.InRange(r.OutputLen, 5, 15));
        Assert.True(requests.Select(r => r.InputLen).Distinct().Count() > 50);
        Assert.Equal(requests, BenchWorkload.Build(options).Requests);
        // The arrival stream is separate: a rate changes when requests come, not how long they are.
        Assert.Equal(requests.Select(r => r.InputLen), BenchWorkload.Build(options with { RequestRate = 5 }).Requests.Select(r => r.InputLen));
    }

    [Fact]
    public void AnAzureTraceIsReplayedInScaledTimeOrAtAGivenRate()
    {
        var path = WriteFile("azure.csv", """
            TIMESTAMP,ContextTokens,GeneratedTokens
            2023-11-16 18:17:03.0000000,4808,10
            2023-11-16 18:17:05.0000000,0,8
            2023-11-16 18:17:07.0000000,300,0
            """);
        var replayed = BenchWorkload.Build(Options(path) with { TimeScale = 0.5 });
        Assert.Equal([new(0, 4808, 10), new(1, 1, 8), new(2, 300, 1)], replayed.Requests);
        Assert.Contains("2 requests with 0 input or output tokens sent with 1 instead", replayed.Notes);

        var paced = BenchWorkload.Build(Options(path) with { RequestRate = double.PositiveInfinity, NumPrompts = 2 });
        Assert.Equal([new(0, 4808, 10), new(0, 1, 8)], paced.Requests);
    }

    [Fact]
    public void AMalformedTraceNamesFileLineAndField()
    {
        var path = WriteFile("bad.csv", """
            TIMESTAMP,ContextTokens,GeneratedTokens
            2023-11-16 18:17:03.0000000,4808,10
            2023-11-16 18:17:05.0000000,many,8
            """);
        var e = Assert.Throws<BenchInputException>(() => BenchWorkload.Build(Options(path)));
        Assert.Equal($"{path}:3: ContextTokens: expected a non-negative integer token count, got 'many'", Assert.Single(e.Problems));
    }

    [Fact]
    public void AFormatThatDoesNotMatchTheFileIsAnError()
    {
        var path = WriteFile("trace.jsonl", """{"timestamp": 0, "input_length": 10, "output_length": 5}""");
        Assert.Equal([new(0, 10, 5)], BenchWorkload.Build(Options(path)).Requests);
        var e = Assert.Throws<BenchInputException>(() => BenchWorkload.Build(Options(path) with { TraceFormat = TraceFormat.Azure }));
        Assert.StartsWith($"{path}:1: TIMESTAMP: missing column", e.Problems[0]);
    }
}
