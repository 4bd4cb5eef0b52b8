using System.Globalization;
using System.Text;

namespace OServe.Engine.Serving;

/// <summary>
/// Writer for the Prometheus text exposition format (version 0.0.4). Hand-written because
/// prometheus-net 8.2.1 refuses ':' in metric names, and vLLM's set lives under "vllm:" (ours under
/// "oserve:"), which the format allows and dashboards for vLLM expect.
/// </summary>
public sealed class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly StringBuilder _text = new();

    public void Family(string name, string type, string help) =>
        _text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\").Replace("\n", "\\n")).Append('\n')
             .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    public void Sample(string name, IEnumerable<(string Name, string Value)> labels, double value)
    {
        _text.Append(name).Append('{');
        var first = true;
        foreach (var (labelName, labelValue) in labels)
        {
            _text.Append(first ? "" : ",").Append(labelName).Append("=\"").Append(EscapeLabel(labelValue)).Append('"');
            first = false;
        }
        _text.Append("} ").Append(Number(value)).Append('\n');
    }

    public override string ToString() => _text.ToString();

    public static string Number(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString(CultureInfo.InvariantCulture),
    };

    private static string EscapeLabel(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");
}

/// <summary>A cumulative histogram with fixed upper bounds; safe to observe from many requests at once.</summary>
public sealed class PrometheusHistogram(string name, string help, double[] upperBounds)
{
    private readonly long[] _bucketCounts = new long[upperBounds.Length];
    private readonly Lock _lock = new();
    private long _count;
    private double _sum;

    public void Observe(double value)
    {
        var bucket = Array.FindIndex(upperBounds, bound => value <= bound);
        lock (_lock)
        {
            if (bucket >= 0)
                _bucketCounts[bucket]++;
            _count++;
            _sum += value;
        }
    }

    public void Write(PrometheusText text, (string Name, string Value)[] labels)
    {
        long[] buckets;
        long count;
        double sum;
        lock (_lock)
            (buckets, count, sum) = ((long[])_bucketCounts.Clone(), _count, _sum);
        text.Family(name, "histogram", help);
        long cumulative = 0;
        for (var i = 0; i < upperBounds.Length; i++)
        {
            cumulative += buckets[i];
            text.Sample(name + "_bucket", [.. labels, ("le", PrometheusText.Number(upperBounds[i]))], cumulative);
        }
        text.Sample(name + "_bucket", [.. labels, ("le", "+Inf")], count);
        text.Sample(name + "_sum", labels, sum);
        text.Sample(name + "_count", labels, count);
    }
}
