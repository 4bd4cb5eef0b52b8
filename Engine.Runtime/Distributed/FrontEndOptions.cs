namespace OServe.Engine.Distributed;

/// <summary>How the front end follows the plan and what a request whose replica died may wait for.</summary>
public sealed record FrontEndOptions
{
    public TimeSpan PlanPollInterval { get; init; } = TimeSpan.FromMilliseconds(250);
    public TimeSpan StatusPollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often the front end sends its arrival counts per type to the controller (the workload it re-plans for).</summary>
    public TimeSpan ArrivalReportInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A request that lost its replica keeps trying others this long before it fails.</summary>
    public TimeSpan ResumeTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A replica whose stream broke is avoided this long by every request (or until the plan drops
    /// it). Short on purpose: the break may have been the client's gateway dying, not the replica.
    /// </summary>
    public TimeSpan SuspectFor { get; init; } = TimeSpan.FromSeconds(3);
    public int AdmissionCapacity { get; init; } = 1024;
}
