using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Simulation;

public enum ReplicaStatus
{
    /// <summary>Loading its weights or waiting for its devices: may queue requests, runs nothing.</summary>
    Building,
    Serving,
    /// <summary>Removed by a switch: admits nothing new, finishes (or hands off) what it runs.</summary>
    Draining,
    Stopped,
}

/// <summary>What a replica is made of in the simulator: its scheduler limits and its step time.</summary>
public sealed record ReplicaModel(SchedulerConfig Scheduler, IIterationTimeModel IterationTime);

/// <summary>
/// One simulated replica: the engine's own <see cref="Scheduler"/> (with its KV block manager) and
/// the engine's <see cref="SimulatedModelRunner"/> on a clock of the replica's own. A step is begun
/// at the global time (the runner moves the replica clock to the step's end) and completed by a
/// <see cref="StepEndEvent"/> at that time, so replicas overlap in virtual time.
/// </summary>
public sealed class SimReplica
{
    private readonly VirtualClock _clock = new();
    private readonly SimulatedModelRunner _runner;
    private SchedulerOutput? _inFlight;
    private int[] _sampled = new int[64];
    private double _lastStepEnd = double.NegativeInfinity;
    private double _idleBeforeStep;

    public SimReplica(int index, ReplicaSpec spec, ReplicaModel model, ReplicaStatus status)
    {
        Index = index;
        Spec = spec;
        Scheduler = new Scheduler(model.Scheduler);
        var iterationTime = model.IterationTime;
        _runner = new SimulatedModelRunner(_clock, output => iterationTime.StepSeconds(output, _idleBeforeStep));
        Status = status;
    }

    /// <summary>Position among every replica the run has created (stable id for metrics).</summary>
    public int Index { get; }
    public ReplicaSpec Spec { get; }
    public string Id => Spec.Id;
    public Scheduler Scheduler { get; }
    public ReplicaStatus Status { get; internal set; }
    public bool IsStepping => _inFlight is not null;

    /// <summary>Requests queued or running here, plus KV transfers on their way (the dispatcher's load).</summary>
    public int Load => Scheduler.NumRunning + Scheduler.NumWaiting + NumIncoming;
    internal int NumIncoming { get; set; }

    /// <summary>Removed replicas still on devices this (new) replica needs; it waits for them to stop.</summary>
    internal int NumBlockers { get; set; }
    internal double ShardsDoneAt { get; set; }
    internal List<SimReplica> Blocks { get; } = [];
    /// <summary>Draining with KV moves: long requests leave at the next step boundary.</summary>
    internal bool MigrateLongRequests { get; set; }

    public long NumSteps { get; private set; }
    public double BusySeconds { get; private set; }
    public double ReadyAt { get; internal set; }
    public double StoppedAt { get; internal set; } = double.NaN;

    public bool CanRun => Status is ReplicaStatus.Serving or ReplicaStatus.Draining;

    /// <summary>Starts a step at <paramref name="now"/> when idle with work; returns its end time, or null.</summary>
    public double? TryBeginStep(double now)
    {
        if (_inFlight is not null || !CanRun || !Scheduler.HasUnfinishedSequences)
            return null;
        var output = Scheduler.Schedule();
        if (output.IsEmpty)
            return null;
        foreach (var chunk in output.Chunks)
            if (double.IsNaN(chunk.Sequence.FirstScheduledTime))
                chunk.Sequence.FirstScheduledTime = now;
        _clock.AdvanceTo(now);
        if (_sampled.Length < output.NumChunks)
            _sampled = new int[Math.Max(output.NumChunks, _sampled.Length * 2)];
        var sampled = _sampled.AsSpan(0, output.NumChunks);
        sampled.Fill(IModelRunner.NoToken);
        _idleBeforeStep = now - _lastStepEnd;
        _runner.Execute(output, sampled);
        _inFlight = output;
        BusySeconds += _clock.Now - now;
        return _clock.Now;
    }

    /// <summary>Applies the step that ends now and reports every token it produced.</summary>
    public void CompleteStep(double now, IRequestObserver observer)
    {
        var output = _inFlight ?? throw new InvalidOperationException($"replica {Id}: no step in flight at {now}");
        _inFlight = null;
        _lastStepEnd = now;
        NumSteps++;
        var chunks = output.Chunks;
        var sampled = _sampled.AsSpan(0, chunks.Length);
        // Sequences that left during the step (none in this simulator: migration waits for a step
        // boundary) would not be Running; their chunks emit nothing.
        Span<bool> live = chunks.Length <= 256 ? stackalloc bool[chunks.Length] : new bool[chunks.Length];
        for (int k = 0; k < chunks.Length; k++)
            live[k] = chunks[k].Sequence.Status == SequenceStatus.Running;
        Scheduler.Update(output, sampled);
        for (int k = 0; k < chunks.Length; k++)
        {
            if (!live[k] || !chunks[k].SamplesToken) continue;
            var seq = chunks[k].Sequence;
            double gap = double.IsNaN(seq.LastTokenTime) ? double.NaN : now - seq.LastTokenTime;
            if (double.IsNaN(seq.FirstTokenTime)) seq.FirstTokenTime = now;
            seq.LastTokenTime = now;
            if (seq.IsFinished) seq.FinishedTime = now;
            observer.OnToken(this, seq, now, gap);
        }
    }

    public override string ToString() => $"{Id} [{Status}] running {Scheduler.NumRunning}, waiting {Scheduler.NumWaiting}";
}

/// <summary>Receives what the replicas produce (the metrics collector).</summary>
public interface IRequestObserver
{
    /// <param name="interTokenGap">Seconds since the request's previous token; NaN for its first token.</param>
    void OnToken(SimReplica replica, Sequence seq, double now, double interTokenGap);
}
