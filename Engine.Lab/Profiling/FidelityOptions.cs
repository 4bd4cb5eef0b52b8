namespace OServe.Engine.Profiling;

/// <summary>
/// One fidelity check: the same requests through the real engine (over HTTP, measured by the load
/// generator) and through the simulator with this machine's profile. The trace's head is replayed
/// with its arrival gaps multiplied by <see cref="TimeScale"/> and its lengths by
/// <see cref="LengthScale"/> (then capped to the served model's context), so a small CPU serves it
/// in about a minute. The plan is one replica with these scheduler limits.
/// </summary>
public sealed record FidelityOptions
{
    /// <summary>A trace file (Azure, BurstGPT, Mooncake); null: the planner's synthetic stream of <see cref="SyntheticClasses"/>.</summary>
    public string? TracePath { get; init; }

    /// <summary>The synthetic stream's traffic classes when there is no trace; null: Azure conversation alone.</summary>
    public IReadOnlyList<OServe.Planner.Workload.TrafficClass>? SyntheticClasses { get; init; }
    public int NumRequests { get; init; } = 40;
    /// <summary>Requests of the trace skipped before the head that is replayed.</summary>
    public int Skip { get; init; }
    public double TimeScale { get; init; } = 1.0;
    public double LengthScale { get; init; } = 0.1;
    public int MaxNumSeqs { get; init; } = 8;
    public int MaxNumBatchedTokens { get; init; } = 2048;
    public double KvCacheGib { get; init; } = 0.5;
    public int Seed { get; init; }

    /// <summary>
    /// Real runs of the same requests, each on a fresh engine. The headline compares the simulator
    /// with the median of each metric over the runs; their spread is the real engine's own
    /// run-to-run noise on this machine, the floor under any agreement.
    /// </summary>
    public int Repeats { get; init; } = 1;

    /// <summary>Throws <see cref="ArgumentException"/> naming each option that cannot work.</summary>
    public void Validate()
    {
        var problems = new List<string>();
        void Check(bool ok, string problem) { if (!ok) problems.Add(problem); }
        Check(TracePath is null || File.Exists(TracePath), $"--trace: file '{TracePath}' not found");
        Check(NumRequests >= 1, $"--num-requests: must be at least 1, got {NumRequests}");
        Check(Skip >= 0, $"--skip: must not be negative, got {Skip}");
        Check(double.IsFinite(TimeScale) && TimeScale > 0, $"--time-scale: must be a positive number, got {TimeScale}");
        Check(double.IsFinite(LengthScale) && LengthScale > 0, $"--length-scale: must be a positive number, got {LengthScale}");
        Check(MaxNumSeqs >= 1, $"--max-num-seqs: must be at least 1, got {MaxNumSeqs}");
        Check(MaxNumBatchedTokens >= 1, $"--max-num-batched-tokens: must be at least 1, got {MaxNumBatchedTokens}");
        Check(Repeats >= 1, $"--repeats: must be at least 1, got {Repeats}");
        Check(double.IsFinite(KvCacheGib) && KvCacheGib > 0, $"--kv-cache-gib: must be a positive number, got {KvCacheGib}");
        if (problems.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine, problems));
    }
}
