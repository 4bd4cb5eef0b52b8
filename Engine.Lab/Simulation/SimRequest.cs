namespace OServe.Engine.Simulation;

/// <summary>
/// One request of a simulated workload: arrival (seconds from the start), prompt and output length
/// (the output length is the trace's, so the simulator knows when a request ends), and the index of
/// its workload type (for per-type metrics; -1 when untyped).
/// </summary>
public readonly record struct SimRequest(int Id, double ArrivalS, int InputTokens, int OutputTokens, int TypeIndex = -1);
