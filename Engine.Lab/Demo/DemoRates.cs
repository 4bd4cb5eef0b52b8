namespace OServe.Engine.Demo;

/// <summary>Arrival rates of the demo workload, requests/s: long prompts in their phases, chats at the bottom and top of their burst.</summary>
public sealed record DemoRates(double LongRps, double ChatLowRps, double ChatPeakRps)
{
    /// <summary>
    /// The chat burst peaks at most at this fraction of 2 x tp1's measured chat throughput.
    /// Calibration measures the engines in-process; the replays also run the HTTP server and the
    /// load generator on the same two cores. 0.65 until late 2026-12-05. Runs of then with 32-token
    /// chats: at 0.75 of a 229 req/s calibration (a 162 req/s peak), 2 x tp1's chat P99 E2E rose to
    /// 380 ms and one adaptive replay stalled at 800 ms; 143-152 req/s peaks kept it at 160-280 ms.
    /// </summary>
    public const double PeakShare = 0.7;
    /// <summary>
    /// The chat burst peaks at most at this multiple of 1 x tp2's measured chat throughput: beyond
    /// it, with the HTTP work on the same cores, 1 x tp2 falls behind in the burst. Runs of
    /// late 2026-12-05: at 0.9 x (the 0.65 share binding) tp2 kept up (chat P99 E2E 230-250 ms), and at
    /// 1.1 x one of its two replays still kept up (277 ms); <see cref="PeakShare"/> bounds the peak
    /// from above whatever this gives.
    /// </summary>
    public const double Tp2Overload = 1.2;
    /// <summary>Chats at the foot of the ramps as a fraction of the peak.</summary>
    public const double LowShare = 0.15;
    /// <summary>Long-prompt load: this fraction of one prompt's TTFT on the faster deployment, per second.</summary>
    public const double LongUtilization = 0.3;

    public DemoRates Scaled(double k) => new(LongRps * k, ChatLowRps * k, ChatPeakRps * k);

    /// <summary>
    /// Rates sized to what this machine measured, so both regimes exist whatever its speed: the
    /// chat peak at <see cref="Tp2Overload"/> x 1 x tp2's chat throughput (it falls behind in the
    /// burst), but at most <see cref="PeakShare"/> of 2 x tp1's (which must keep up); when 2 x tp1
    /// measured no more than that, neither falls behind and the demo says so; long prompts at
    /// <see cref="LongUtilization"/> of the faster deployment's one-prompt time.
    /// </summary>
    public static DemoRates For(ShapeFigures tp2, ShapeFigures twoTp1)
    {
        double peak = Math.Min(Tp2Overload * tp2.MeasuredRps, PeakShare * twoTp1.MeasuredRps);
        double ttft = Math.Min(tp2.MeasuredTtftS, twoTp1.MeasuredTtftS);
        if (!(peak > 0) || !(ttft > 0) || !double.IsFinite(peak) || !double.IsFinite(ttft))
            throw new ArgumentException($"calibration gave no usable figures (chat throughput {tp2.MeasuredRps} and {twoTp1.MeasuredRps} req/s, long TTFT {ttft} s)");
        return new DemoRates(LongUtilization / ttft, LowShare * peak, peak);
    }
}
