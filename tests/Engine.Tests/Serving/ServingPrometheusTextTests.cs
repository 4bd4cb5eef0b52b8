using OServe.Engine.Serving;
using Xunit;

namespace OServe.Engine.Tests.Serving;

public sealed class ServingPrometheusTextTests
{
    [Fact]
    public void Histogram_buckets_are_cumulative_with_inf_sum_and_count()
    {
        var histogram = new PrometheusHistogram("x:latency_seconds", "Latency.", [1.0, 10.0]);
        foreach (var value in new[] { 0.5, 1.0, 2.0, 100.0 })
            histogram.Observe(value);
        var text = new PrometheusText();

        histogram.Write(text, [("model_name", "m")]);

        Assert.Equal("""
            # HELP x:latency_seconds Latency.
            # TYPE x:latency_seconds histogram
            x:latency_seconds_bucket{model_name="m",le="1"} 2
            x:latency_seconds_bucket{model_name="m",le="10"} 3
            x:latency_seconds_bucket{model_name="m",le="+Inf"} 4
            x:latency_seconds_sum{model_name="m"} 103.5
            x:latency_seconds_count{model_name="m"} 4

            """.ReplaceLineEndings("\n"), text.ToString());
    }

    [Fact]
    public void Label_values_escape_backslash_quote_and_newline()
    {
        var text = new PrometheusText();

        text.Sample("x:up", [("model_name", "a\"b\\c\nd")], 1);

        Assert.Equal("x:up{model_name=\"a\\\"b\\\\c\\nd\"} 1\n", text.ToString());
    }
}
