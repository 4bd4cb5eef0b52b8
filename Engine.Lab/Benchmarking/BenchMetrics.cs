namespace OServe.Engine.Benchmarking;

/// <summary>Mean, median, standard deviation and chosen percentiles of one latency metric, in milliseconds.</summary>
public sealed record MetricSummary(double MeanMs, double MedianMs, double StdMs, IReadOnlyList<(double Percentile, double ValueMs)> Percentiles)
{
    public double PercentileMs(double p) => Percentiles.First(x => x.Percentile == p).ValueMs;
}

/// <summary>
/// The statistics of vLLM's benchmark, with numpy's conventions so figures compare one to one:
/// population standard deviation, linearly interpolated percentiles, and 0 for an empty sample.
/// </summary>
public static class BenchMetrics
{
    public static double Mean(IReadOnlyList<double> xs)
    {
        if (xs.Count == 0) return 0;
        var sum = 0.0;
        foreach (var x in xs) sum += x;
        return sum / xs.Count;
    }

    /// <summary>Population standard deviation (numpy's default ddof = 0).</summary>
    public static double Std(IReadOnlyList<double> xs)
    {
        if (xs.Count == 0) return 0;
        var mean = Mean(xs);
        var sum = 0.0;
        foreach (var x in xs) sum += (x - mean) * (x - mean);
        return Math.Sqrt(sum / xs.Count);
    }

    /// <summary>numpy.percentile's default: linear interpolation between the two nearest ranks of the sorted sample.</summary>
    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0) return 0;
        var rank = p / 100.0 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    public static MetricSummary Summarize(IReadOnlyList<double> seconds, IReadOnlyList<double> percentiles)
    {
        var sorted = seconds.ToArray();
        Array.Sort(sorted);
        return new MetricSummary(Mean(seconds) * 1000, Percentile(sorted, 50) * 1000, Std(seconds) * 1000,
            percentiles.Select(p => (p, Percentile(sorted, p) * 1000)).ToList());
    }

    /// <summary>
    /// Summaries of TTFT, TPOT (requests with more than one output token), ITL (every gap of every
    /// successful request) and E2E latency, over successful requests only, as vLLM computes them.
    /// </summary>
    public static IReadOnlyDictionary<BenchMetric, MetricSummary> SummarizeAll(IReadOnlyList<RequestOutcome> outcomes, IReadOnlyList<double> percentiles)
    {
        var ok = outcomes.Where(o => o.Success).ToList();
        return new Dictionary<BenchMetric, MetricSummary>
        {
            [BenchMetric.Ttft] = Summarize(ok.Select(o => o.Ttft).ToList(), percentiles),
            [BenchMetric.Tpot] = Summarize(ok.Where(o => o.OutputTokens > 1).Select(o => o.Tpot).ToList(), percentiles),
            [BenchMetric.Itl] = Summarize(ok.SelectMany(o => o.Itl).ToList(), percentiles),
            [BenchMetric.E2el] = Summarize(ok.Select(o => o.Latency).ToList(), percentiles),
        };
    }

    /// <summary>
    /// vLLM's goodput: successful requests whose every SLO'd metric is at most its bound
    /// (TPOT counts as 0 for a one-token output), per second of the run.
    /// </summary>
    public static int CountGood(IReadOnlyList<RequestOutcome> outcomes, IReadOnlyList<GoodputSlo> slos)
    {
        var good = 0;
        foreach (var o in outcomes)
        {
            if (!o.Success) continue;
            var isGood = true;
            foreach (var slo in slos)
            {
                var value = slo.Metric switch
                {
                    BenchMetric.Ttft => o.Ttft,
                    BenchMetric.Tpot => o.Tpot,
                    BenchMetric.E2el => o.Latency,
                    _ => throw new ArgumentOutOfRangeException(nameof(slos), slo.Metric, "no goodput SLO on ITL"),
                };
                if (value > slo.Milliseconds / 1000.0) isGood = false;
            }
            if (isGood) good++;
        }
        return good;
    }
}
