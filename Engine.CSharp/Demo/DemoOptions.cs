namespace OServe.Engine.Demo;

/// <summary>`oserve demo` settings; the defaults finish in about three and a half minutes on 2 cores.</summary>
public sealed record DemoOptions
{
    /// <summary>Length of each of the two replays (adaptive, then static), seconds.</summary>
    public double DurationS { get; init; } = 90;
    public double WindowS { get; init; } = 15;
    /// <summary>Logical CPU devices the planner deploys replicas on.</summary>
    public int NumDevices { get; init; } = 2;
    /// <summary>
    /// Largest TP and PP degree the planner may choose (`--max-parallelism`); null: no limit. 1 by
    /// default: the logical devices share this machine's cores, so a tp2 replica computes no faster
    /// than two tp1 replicas, and the default run stays the one measured in Demo/README.md.
    /// </summary>
    public int? MaxParallelism { get; init; } = 1;
    /// <summary>Multiplies every arrival rate of the built-in workload.</summary>
    public double RateScale { get; init; } = 1.0;
    public int Seed { get; init; } = 7;
    /// <summary>A planner profile file to use instead of calibrating the coefficients here.</summary>
    public string? ProfilePath { get; init; }
    /// <summary>Where to write the calibrated profile (planner format); null: not written.</summary>
    public string? ProfileOutPath { get; init; }
    /// <summary>Where the model runs (`--device`); null: the CPU. On a GPU the devices the planner sees are slots sharing it.</summary>
    public TorchSharp.torch.Device? Device { get; init; }

    public static DemoOptions Quick => new() { DurationS = 10, WindowS = 2.5, RateScale = 0.8 };

    public void Validate()
    {
        if (!(DurationS >= 2) || !double.IsFinite(DurationS)) throw new ArgumentException($"--duration: must be at least 2 seconds, got {DurationS}");
        if (!(WindowS > 0) || WindowS > DurationS) throw new ArgumentException($"--window: must be in (0, duration {DurationS}] seconds, got {WindowS}");
        if (NumDevices is < 1 or > 8) throw new ArgumentException($"--devices: must be in 1..8, got {NumDevices}");
        if (MaxParallelism is < 1) throw new ArgumentException($"--max-parallelism: must be at least 1, got {MaxParallelism}");
        if (!(RateScale > 0) || !double.IsFinite(RateScale)) throw new ArgumentException($"--rate-scale: must be a positive number, got {RateScale}");
    }
}
