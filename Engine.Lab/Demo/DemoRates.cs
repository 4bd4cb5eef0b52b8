namespace OServe.Engine.Demo;

/// <summary>Arrival rates of the demo workload, requests/s: long prompts in their phases, chats at the bottom and top of their burst.</summary>
public sealed record DemoRates(double LongRps, double ChatLowRps, double ChatPeakRps)
{
    /// <summary>
    /// The chat burst peaks at most at this fraction of 2 x tp1's chat throughput over HTTP, which
    /// must keep up. History: until the third session of 2026-12-05 the rates came from in-process
    /// figures, with this share at 0.65-0.7 and the peak also at most 1.2 x tp2's in-process
    /// throughput. The per-request CSVs (`demo --requests-csv`) then showed 2 x tp1's chat tail
    /// following the peak's absolute rate (a 189 req/s peak, 0.7 x a 270 req/s calibration, gave
    /// it 339 and 616 ms P99 E2E in its two replays): the server's and the load generator's work is
    /// per request, and over HTTP 1 x tp2 typically loses more of its throughput than 2 x tp1
    /// (medians of seven calibrations 15% and 6%).
    /// </summary>
    public const double PeakShare = 0.8;
    /// <summary>Chats at the foot of the ramps as a fraction of the peak.</summary>
    public const double LowShare = 0.15;
    /// <summary>Long-prompt load: this fraction of one prompt's TTFT on the faster deployment, per second.</summary>
    public const double LongUtilization = 0.3;

    public DemoRates Scaled(double k) => new(LongRps * k, ChatLowRps * k, ChatPeakRps * k);

    /// <summary>
    /// Rates sized to what this machine measured over HTTP, so both regimes exist whatever its
    /// speed: the chat peak at the geometric mean of 1 x tp2's and 2 x tp1's chat throughputs, so
    /// 1 x tp2 falls behind by the factor 2 x tp1 has to spare, but at most <see cref="PeakShare"/>
    /// of 2 x tp1's; when 2 x tp1 measured no more than 1 x tp2, neither falls behind and the demo
    /// says so. Long prompts at <see cref="LongUtilization"/> of the faster deployment's one-prompt time.
    /// </summary>
    public static DemoRates For(ShapeFigures tp2, ShapeFigures twoTp1)
    {
        double peak = Math.Min(Math.Sqrt(tp2.ServedRps * twoTp1.ServedRps), PeakShare * twoTp1.ServedRps);
        double ttft = Math.Min(tp2.MeasuredTtftS, twoTp1.MeasuredTtftS);
        if (!(peak > 0) || !(ttft > 0) || !double.IsFinite(peak) || !double.IsFinite(ttft))
            throw new ArgumentException($"calibration gave no usable figures (chat throughput {tp2.ServedRps} and {twoTp1.ServedRps} req/s, long TTFT {ttft} s)");
        return new DemoRates(LongUtilization / ttft, LowShare * peak, peak);
    }
}
