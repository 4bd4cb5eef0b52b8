using OServe.Planner.Forecast;
using OServe.Planner.Workload;

namespace OServe.Engine.Simulation;

/// <summary>
/// The workload a live planner can know at the start of a window, and synthetic requests drawn from
/// it for plan verification. Only requests that arrived before the window's start are read: rates
/// come from the forecast over past windows; arrival patterns and lengths are replayed
/// from recent past requests of each type. Reading the trace's future would make the verification an oracle, so every method
/// here takes a cut-off and ignores what lies after it.
/// </summary>
public static class ForecastWorkload
{
    /// <summary>
    /// Forecast rate (requests/s) per type for window <paramref name="window"/>, from the per-type
    /// counts of windows 0..window-1 (the planner's forecaster, ForecastMethod.Auto, as its schedule uses). Window 0 has
    /// no history: like every planner's schedule here, it takes window 0's observed rates (the cold
    /// start convention; the static baseline's search sees the whole trace).
    /// </summary>
    public static double[] Rates(IReadOnlyList<SimRequest> requests, int numTypes, double windowS, int window)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(window);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(windowS);
        int numWindows = Math.Max(1, window);
        double cutoff = window == 0 ? windowS : window * windowS;
        var counts = new double[numTypes][];
        for (int j = 0; j < numTypes; j++) counts[j] = new double[numWindows];
        foreach (var r in requests)
        {
            if (r.ArrivalS >= cutoff) continue;
            if (r.TypeIndex < 0 || r.TypeIndex >= numTypes) continue;
            counts[r.TypeIndex][Math.Min(numWindows - 1, (int)(r.ArrivalS / windowS))] += 1 / windowS;
        }
        if (window == 0) return counts.Select(c => c[0]).ToArray();
        var options = new ForecastOptions(ForecastOptions.Default.SeasonLength, ForecastOptions.Default.MovingAverageWindow, ForecastOptions.Default.MinHistory,
            windowS, ForecastOptions.Default.ValidationWindows, ForecastOptions.Default.MaxHistory);
        return counts.Select(c => Math.Max(0, Forecaster.next(options, ForecastMethod.Auto, c))).ToArray();
    }

    /// <summary>
    /// The forecast mix scaled up to the total rate of the busiest of the last <paramref name="numWindows"/>
    /// full windows before window <paramref name="window"/> (the forecast itself when it is higher): a
    /// stress level for plan verification, since bursts return faster than a plan can switch. The
    /// total, not each type's own maximum: types that peak in different windows never peaked together.
    /// </summary>
    public static double[] PeakRates(IReadOnlyList<SimRequest> requests, int numTypes, double windowS, int window, IReadOnlyList<double> forecast, int numWindows = 5)
    {
        int first = Math.Max(0, window - numWindows);
        var totals = new double[Math.Max(1, window - first)];
        foreach (var r in requests)
        {
            int w = (int)(r.ArrivalS / windowS);
            // Past windows only: w < window.
            if (w < first || w >= window || r.TypeIndex < 0 || r.TypeIndex >= numTypes) continue;
            totals[w - first] += 1 / windowS;
        }
        double forecastTotal = forecast.Sum();
        double peak = totals.Max();
        return forecastTotal > 0 && peak > forecastTotal ? forecast.Select(f => f * peak / forecastTotal).ToArray() : forecast.ToArray();
    }

    /// <summary>(input, output) lengths per type of the most recent requests (at most <paramref name="maxPerType"/>) that arrived before <paramref name="beforeS"/>.</summary>
    public static (int Input, int Output)[][] PastLengths(IReadOnlyList<SimRequest> requests, int numTypes, double beforeS, int maxPerType = 2048)
    {
        var lists = Enumerable.Range(0, numTypes).Select(_ => new List<(int, int)>()).ToArray();
        foreach (var r in requests)
            if (r.ArrivalS < beforeS && r.TypeIndex >= 0 && r.TypeIndex < numTypes)
                lists[r.TypeIndex].Add((r.InputTokens, r.OutputTokens));
        return lists.Select(l => l.Skip(Math.Max(0, l.Count - maxPerType)).ToArray()).ToArray();
    }

    /// <summary>
    /// Synthetic arrivals over [0, <paramref name="durationS"/>) at the forecast <paramref name="rates"/>.
    /// Each type replays its own arrivals (with their lengths) of the last <paramref name="lookbackS"/>
    /// seconds before <paramref name="beforeS"/>, its time axis stretched so the rate is the forecast one
    /// and tiled to the duration: real traces are bursty, and bursts of long prefills are what break a
    /// TTFT SLO, so Poisson arrivals at the mean rate would favour plans with few large replicas. A type
    /// with fewer than <paramref name="minReplay"/> recent arrivals gets Poisson arrivals, its lengths
    /// drawn from its past requests, or (none yet) log-normal around its centre with its fitted spread.
    /// Only requests that arrived before <paramref name="beforeS"/> are read. Seeded and deterministic.
    /// </summary>
    public static SimRequest[] Draw(IReadOnlyList<SimRequest> history, double beforeS, double lookbackS, IReadOnlyList<double> rates,
        IReadOnlyList<RequestType> types, double durationS, int maxContext, int seed, int minReplay = 8)
    {
        if (rates.Count != types.Count)
            throw new ArgumentException($"rates ({rates.Count}) and types ({types.Count}) must have one entry per type");
        var rng = new Random(seed);
        double span = Math.Min(lookbackS, beforeS);
        var recent = Enumerable.Range(0, types.Count).Select(_ => new List<SimRequest>()).ToArray();
        foreach (var r in history)
            if (r.ArrivalS < beforeS && r.ArrivalS >= beforeS - span && r.TypeIndex >= 0 && r.TypeIndex < types.Count)
                recent[r.TypeIndex].Add(r);
        var past = PastLengths(history, types.Count, beforeS);
        var drawn = new List<(double At, int Input, int Output, int Type)>();
        void Add(double at, int input, int output, int type)
        {
            output = Math.Clamp(output, 1, maxContext - 1);
            input = Math.Clamp(input, 1, maxContext - output);
            drawn.Add((at, input, output, type));
        }
        for (int j = 0; j < types.Count; j++)
        {
            double rate = rates[j];
            if (!(rate > 0)) continue;
            if (recent[j].Count >= minReplay && span > 0)
            {
                // Stretch the recent pattern by observed / forecast rate, then tile it.
                double stretch = recent[j].Count / span / rate;
                double period = span * stretch;
                for (double offset = 0; offset < durationS; offset += period)
                    foreach (var r in recent[j])
                    {
                        double at = offset + (r.ArrivalS - (beforeS - span)) * stretch;
                        if (at < durationS) Add(at, r.InputTokens, r.OutputTokens, j);
                    }
                continue;
            }
            for (double t = Exponential(rng, rate); t < durationS; t += Exponential(rng, rate))
            {
                var (input, output) = past[j].Length > 0
                    ? past[j][rng.Next(past[j].Length)]
                    : (LogNormal(rng, types[j].CentroidInputTokens, types[j].SpreadLogInput), LogNormal(rng, types[j].CentroidOutputTokens, types[j].SpreadLogOutput));
                Add(t, input, output, j);
            }
        }
        drawn.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Type.CompareTo(b.Type));
        var result = new SimRequest[drawn.Count];
        for (int i = 0; i < drawn.Count; i++)
            result[i] = new SimRequest(i, drawn[i].At, drawn[i].Input, drawn[i].Output, drawn[i].Type);
        return result;
    }

    private static double Exponential(Random rng, double rate) => -Math.Log(1 - rng.NextDouble()) / rate;

    private static int LogNormal(Random rng, double centre, double spread)
    {
        // Box-Muller; the centre is the geometric mean, the spread the standard deviation in log space.
        double z = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        return (int)Math.Round(Math.Max(1, centre) * Math.Exp(spread * z));
    }
}
