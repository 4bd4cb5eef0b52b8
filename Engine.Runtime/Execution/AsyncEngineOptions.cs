namespace OServe.Engine.Execution;

public sealed record AsyncEngineOptions
{
    /// <summary>Name served under /v1/models.</summary>
    public required string ModelName { get; init; }

    /// <summary>Requests that may wait for the engine loop beyond the scheduler's queue; more are rejected (429/503).</summary>
    public int AdmissionCapacity { get; init; } = 1024;

    /// <summary>Retry-After sent with a rejection.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Most requests moved into the scheduler's waiting queue at once (default: the scheduler's
    /// MaxNumSeqs). The rest stay in the bounded admission queue, so its capacity is what bounds
    /// the backlog and a full queue is visible to new callers.
    /// </summary>
    public int? MaxSchedulerWaiting { get; init; }

    /// <summary>Told about every step the loop runs (null: nothing recorded).</summary>
    public IStepObserver? StepObserver { get; init; }
}
