using OServe.Contracts;

namespace OServe.Engine.Simulation;

/// <summary>vLLM benchmark figures for one group of requests (one type, or all).</summary>
public sealed record MetricsSummary
{
    public required string Name { get; init; }
    public int NumRequests { get; init; }
    public double DurationS { get; init; }
    public double RequestThroughput { get; init; }
    public double OutputTokenThroughput { get; init; }
    public double TotalTokenThroughput { get; init; }
    public double Goodput { get; init; }
    /// <summary>Fraction of requests meeting every SLO (1 when no SLO is set).</summary>
    public double SloAttainment { get; init; }
    public required LatencyStats Ttft { get; init; }
    public required LatencyStats Tpot { get; init; }
    public required LatencyStats Itl { get; init; }
    public required LatencyStats E2e { get; init; }
}

/// <summary>Figures of one window of the run (requests grouped by arrival; tokens by finish time).</summary>
public sealed record WindowMetrics(double StartS, int NumArrivals, double[] ArrivalRatePerType, double OutputTokenThroughput,
    double P99E2e, double P99Ttft, double MeanE2e, double SloAttainment);

/// <summary>A run's results: overall, per workload type, over time, plus what the switches did.</summary>
public sealed record SimulationReport
{
    public required MetricsSummary Overall { get; init; }
    public required IReadOnlyList<MetricsSummary> PerType { get; init; }
    public required IReadOnlyList<WindowMetrics> Windows { get; init; }
    public required IReadOnlyList<SwitchRecord> Switches { get; init; }
    public long NumEvents { get; init; }
    public long NumPreemptions { get; init; }
    public int NumMigrated { get; init; }
    public double WallSeconds { get; init; }

    /// <summary>Sorted end-to-end latencies of every request (for CDF plots; not serialized).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public double[] SortedE2e { get; init; } = [];

    public static SimulationReport Build(Simulation sim, Slo slo, double windowS, double wallSeconds)
    {
        var records = sim.Metrics.Records;
        var names = sim.Setup.TypeNames;
        var itl = sim.Metrics.InterTokenLatencies;
        var perType = new List<MetricsSummary>();
        for (int j = 0; j < names.Count; j++)
        {
            int type = j;
            perType.Add(Summarize(names[j], records.Where(r => r.TypeIndex == type).ToList(), itl[j].ToArray(), slo));
        }
        var overall = Summarize("all", records, itl.SelectMany(l => l).ToArray(), slo);
        var e2e = records.Select(r => r.E2e).ToArray();
        Array.Sort(e2e);
        return new SimulationReport
        {
            Overall = overall,
            PerType = perType,
            Windows = Windowed(records, names.Count, slo, windowS),
            Switches = sim.SwitchLog,
            NumEvents = sim.NumEvents,
            NumPreemptions = records.Sum(r => (long)r.NumPreemptions),
            NumMigrated = records.Count(r => r.NumMigrations > 0),
            WallSeconds = wallSeconds,
            SortedE2e = e2e,
        };
    }

    public static bool MeetsSlo(in RequestRecord r, Slo slo) =>
        (slo.TtftS is not double ttft || r.Ttft <= ttft)
        && (slo.TpotS is not double tpot || r.Tpot <= tpot)
        && (slo.E2eS is not double e2e || r.E2e <= e2e);

    public static MetricsSummary Summarize(string name, IReadOnlyList<RequestRecord> records, double[] itl, Slo slo)
    {
        if (records.Count == 0)
            return new MetricsSummary { Name = name, Ttft = LatencyStats.Empty, Tpot = LatencyStats.Empty, Itl = LatencyStats.Empty, E2e = LatencyStats.Empty, SloAttainment = double.NaN };
        double first = double.MaxValue, last = 0;
        long outTokens = 0, allTokens = 0;
        int good = 0;
        var ttft = new double[records.Count];
        var tpot = new double[records.Count];
        var e2e = new double[records.Count];
        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            first = Math.Min(first, r.ArrivalS);
            last = Math.Max(last, r.FinishS);
            outTokens += r.OutputTokens;
            allTokens += r.InputTokens + r.OutputTokens;
            ttft[i] = r.Ttft;
            tpot[i] = r.Tpot;
            e2e[i] = r.E2e;
            if (MeetsSlo(r, slo)) good++;
        }
        double duration = Math.Max(last - first, 1e-9);
        return new MetricsSummary
        {
            Name = name,
            NumRequests = records.Count,
            DurationS = duration,
            RequestThroughput = records.Count / duration,
            OutputTokenThroughput = outTokens / duration,
            TotalTokenThroughput = allTokens / duration,
            Goodput = good / duration,
            SloAttainment = (double)good / records.Count,
            Ttft = LatencyStats.Of(ttft),
            Tpot = LatencyStats.Of(tpot),
            Itl = LatencyStats.Of(itl),
            E2e = LatencyStats.Of(e2e),
        };
    }

    private static List<WindowMetrics> Windowed(IReadOnlyList<RequestRecord> records, int numTypes, Slo slo, double windowS)
    {
        if (records.Count == 0 || windowS <= 0) return [];
        double end = records.Max(r => r.FinishS);
        int n = Math.Max(1, (int)Math.Ceiling(end / windowS));
        var e2e = new List<double>[n];
        var ttft = new List<double>[n];
        var rates = new double[n][];
        var tokens = new double[n];
        var good = new int[n];
        for (int w = 0; w < n; w++) { e2e[w] = []; ttft[w] = []; rates[w] = new double[Math.Max(1, numTypes)]; }
        foreach (var r in records)
        {
            int w = Math.Min(n - 1, (int)(r.ArrivalS / windowS));
            e2e[w].Add(r.E2e);
            ttft[w].Add(r.Ttft);
            if (r.TypeIndex >= 0 && r.TypeIndex < rates[w].Length) rates[w][r.TypeIndex] += 1 / windowS;
            if (MeetsSlo(r, slo)) good[w]++;
            tokens[Math.Min(n - 1, (int)(r.FinishS / windowS))] += r.OutputTokens / windowS;
        }
        var result = new List<WindowMetrics>(n);
        for (int w = 0; w < n; w++)
        {
            var e = e2e[w].ToArray();
            var t = ttft[w].ToArray();
            Array.Sort(e);
            Array.Sort(t);
            result.Add(new WindowMetrics(w * windowS, e.Length, rates[w], tokens[w],
                LatencyStats.Percentile(e, 99), LatencyStats.Percentile(t, 99), e.Length > 0 ? e.Average() : double.NaN,
                e.Length > 0 ? (double)good[w] / e.Length : double.NaN));
        }
        return result;
    }
}
