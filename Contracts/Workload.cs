namespace OServe.Contracts;

public enum TraceFormat
{
    /// <summary>Azure LLM inference CSV: TIMESTAMP,ContextTokens,GeneratedTokens (2023 and 2024).</summary>
    Azure,
    /// <summary>BurstGPT CSV: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type[,...].</summary>
    BurstGpt,
    /// <summary>Mooncake JSONL: timestamp (ms), input_length, output_length, hash_ids.</summary>
    Mooncake,
}

/// <summary>What to do with a request longer than the model's context (prompt + output tokens).</summary>
public enum OverContext
{
    /// <summary>Shorten it to fit (the output kept up to the context less one token, the prompt cut), and say how many were.</summary>
    Clip,
    /// <summary>Leave it out of the workload, and say how many were.</summary>
    Drop,
    /// <summary>Refuse the whole workload with an error naming how many and the longest.</summary>
    Refuse,
}

/// <summary>A request trace on disk. A relative path is resolved against the file that names it.</summary>
public sealed record TraceRef
{
    public required string Path { get; init; }
    public TraceFormat Format { get; init; } = TraceFormat.Azure;
    /// <summary>Arrival times are multiplied by this (0.5 = twice the rate).</summary>
    public double TimeScale { get; init; } = 1.0;
    public double StartS { get; init; }
    public double? DurationS { get; init; }
}

/// <summary>Length distributions fitted to a published trace (see the planner's synthetic generator).</summary>
public enum LengthProfile { AzureConv, AzureCode }

/// <summary>
/// One stream of a synthetic workload: lengths drawn from <see cref="Profile"/>, Poisson arrivals at
/// rate(t) = RateRps * (1 + Amplitude * sin(2 pi (t + PhaseS) / PeriodS)). Components with
/// different phases make the mix shift over time.
/// </summary>
public sealed record SyntheticComponent
{
    public required LengthProfile Profile { get; init; }
    public required double RateRps { get; init; }
    public double Amplitude { get; init; }
    public double PeriodS { get; init; } = 3600;
    public double PhaseS { get; init; }
}

public sealed record SyntheticSpec
{
    public int Seed { get; init; } = 1;
    public required double DurationS { get; init; }
    public required IReadOnlyList<SyntheticComponent> Components { get; init; }
}

/// <summary>A request type: a centroid of (input, output) length; RateRps is its (forecast) arrival rate.</summary>
public sealed record RequestTypeSpec
{
    public required string Name { get; init; }
    public required double InputTokens { get; init; }
    public required double OutputTokens { get; init; }
    public double RateRps { get; init; }
}

/// <summary>
/// What arrives: a trace, or a synthetic spec, or both (the trace when its file exists, else the
/// synthetic fallback, so every scenario runs without ../shared).
/// </summary>
public sealed record Workload
{
    public required string Name { get; init; }
    public TraceRef? Trace { get; init; }
    public SyntheticSpec? Synthetic { get; init; }
    public double WindowS { get; init; } = 60;
    /// <summary>k of the k-means typing.</summary>
    public int NumTypes { get; init; } = 4;
    /// <summary>Requests longer than the model's context: clipped (default), dropped or refused.</summary>
    public OverContext OverContext { get; init; } = OverContext.Clip;
}

/// <summary>Service-level objectives at P99, seconds; a null objective is not enforced.</summary>
public sealed record Slo
{
    public double? TtftS { get; init; }
    public double? TpotS { get; init; }
    public double? E2eS { get; init; }
}
