namespace OServe.Engine.Demo;

/// <summary>`oserve demo` settings; the defaults finish in about two minutes on 2 cores.</summary>
public sealed record DemoOptions
{
    /// <summary>Length of each replay, seconds (three deployments x <see cref="Repeats"/> replays run).</summary>
    public double DurationS { get; init; } = 14;
    public double WindowS { get; init; } = 1.0;
    /// <summary>Replays of each deployment, interleaved (adaptive, static, static, adaptive, ...), for the spread.</summary>
    public int Repeats { get; init; } = 2;
    /// <summary>
    /// Length of one replay over HTTP run before the measured ones and not counted (0: none). The
    /// first replay of the process was always the adaptive one, and it was the slower adaptive replay
    /// in 17 of the 18 runs of 2026-12-05 (e.g. 1041 vs 495 ms, 514 vs 187 ms P99 E2E): it is the first
    /// to run the HTTP server, the load generator and the controller.
    /// </summary>
    public double WarmUpReplayS { get; init; } = 4;
    /// <summary>Multiplies every arrival rate of the workload (which calibration sizes to this machine).</summary>
    public double RateScale { get; init; } = 1.0;
    public int Seed { get; init; } = 7;
    /// <summary>Best-of count of calibration's latency measurements.</summary>
    public int CalibrationRepeats { get; init; } = 3;
    /// <summary>A planner profile file to use instead of the coefficients calibrated here.</summary>
    public string? ProfilePath { get; init; }
    /// <summary>Where to write the calibrated profile (planner format); null: not written.</summary>
    public string? ProfileOutPath { get; init; }
    /// <summary>Simulated seconds of the paper-scale section's trace.</summary>
    public double PaperScaleDurationS { get; init; } = 300;
    public bool PaperScale { get; init; } = true;
    /// <summary>
    /// Runs an `oserve` command line (arguments, output, error; returns the exit code): the paper-scale
    /// section runs `oserve compare` through it. The CLI supplies it, since the lab does not reference
    /// the executable; required when <see cref="PaperScale"/> is set.
    /// </summary>
    public Func<string[], TextWriter, TextWriter, Task<int>>? RunCommand { get; init; }
    /// <summary>Where the model runs (`--device`); null: the CPU. On a GPU the devices the planner sees are slots sharing it.</summary>
    public TorchSharp.torch.Device? Device { get; init; }
    /// <summary>What a live switch does with requests in flight: move them with their KV cache (default) or let them finish where they are.</summary>
    public OServe.Engine.Orchestration.InFlightPolicy InFlight { get; init; } = OServe.Engine.Orchestration.InFlightPolicy.Migrate;
    /// <summary>
    /// After each adaptive replay, its controller's log: every window's observed and forecast rates,
    /// surges, and the decision with its reason (`--windows`), e.g. to see why it did not switch.
    /// </summary>
    public bool ShowWindows { get; init; }
    /// <summary>
    /// A folder to write each replay's requests to, one CSV per replay (<see cref="Benchmarking.OutcomesCsv"/>:
    /// sent when, lengths, TTFT, E2E) as `{deployment}-{repeat}.csv` (`--requests-csv`); null: none.
    /// </summary>
    public string? RequestsCsvDir { get; init; }
    /// <summary>The two request types' lengths.</summary>
    public DemoRequestShapes Shapes { get; init; } = new();

    public static DemoOptions Quick => new() { DurationS = 5, WindowS = 0.5, Repeats = 1, CalibrationRepeats = 2, PaperScaleDurationS = 120, WarmUpReplayS = 0 };

    public void Validate()
    {
        if (!(DurationS >= 2) || !double.IsFinite(DurationS)) throw new ArgumentException($"--duration: must be at least 2 seconds, got {DurationS}");
        if (!(WindowS > 0) || WindowS > DurationS / 4) throw new ArgumentException($"--window: must be in (0, duration/4 = {DurationS / 4}] seconds (the workload has four shifts to follow), got {WindowS}");
        if (Repeats is < 1 or > 10) throw new ArgumentException($"--repeats: must be in 1..10, got {Repeats}");
        if (!(WarmUpReplayS >= 0) || WarmUpReplayS > 60) throw new ArgumentException($"--warm-up-replay: must be 0 (none) to 60 seconds, got {WarmUpReplayS}");
        if (!(RateScale > 0) || !double.IsFinite(RateScale)) throw new ArgumentException($"--rate-scale: must be a positive number, got {RateScale}");
    }
}
