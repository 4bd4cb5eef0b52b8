using OServe.Engine.Benchmarking;
using Xunit;

namespace OServe.Engine.Tests.Benchmarking;

public sealed class OutcomesCsvTests
{
    [Fact]
    public void Writes_a_row_per_request_in_order_with_failures_quoted_on_one_line()
    {
        RequestOutcome[] outcomes =
        [
            new() { Success = true, PromptLen = 2048, OutputTokens = 4, Ttft = 0.2501, Latency = 0.3, SentAtS = 1.5 },
            new() { Success = false, PromptLen = 16, SentAtS = 1.75, Error = "HTTP 400: \"max_tokens\" too large\nsee docs" },
        ];
        var writer = new StringWriter();
        OutcomesCsv.Write(writer, outcomes);
        var lines = writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Equal(
        [
            OutcomesCsv.Header,
            "0,1.5000,2048,4,1,250.10,300.00,",
            "1,1.7500,16,0,0,0.00,0.00,\"HTTP 400: \"\"max_tokens\"\" too large see docs\"",
        ], lines);
    }
}
