namespace OServe.Engine.Simulation;

/// <summary>Mean, median, P90 and P99 of a latency sample (seconds), as vLLM's benchmark prints them.</summary>
public sealed record LatencyStats(int Count, double Mean, double Median, double P90, double P99, double Max)
{
    public static LatencyStats Empty { get; } = new(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);

    /// <summary>Sorts <paramref name="values"/> in place.</summary>
    public static LatencyStats Of(double[] values)
    {
        if (values.Length == 0) return Empty;
        Array.Sort(values);
        double sum = 0;
        foreach (var v in values) sum += v;
        return new(values.Length, sum / values.Length, Percentile(values, 50), Percentile(values, 90), Percentile(values, 99), values[^1]);
    }

    /// <summary>numpy's default (linear) percentile of sorted values.</summary>
    public static double Percentile(double[] sorted, double percent)
    {
        if (sorted.Length == 0) return double.NaN;
        double rank = percent / 100.0 * (sorted.Length - 1);
        int lo = (int)Math.Floor(rank);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }
}
