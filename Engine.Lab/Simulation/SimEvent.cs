namespace OServe.Engine.Simulation;

/// <summary>
/// Ties at the same instant resolve by kind, then by the order events were scheduled: a plan takes
/// effect before replicas react, a step's tokens are emitted before new requests are routed.
/// </summary>
public enum EventKind
{
    PlanSwitch = 0,
    ReplicaReady = 1,
    KvTransferDone = 2,
    StepEnd = 3,
    Arrival = 4,
    Sample = 5,
}

/// <summary>
/// A transition of the simulation: <see cref="Handle"/> mutates the state at <see cref="Time"/>
/// and appends the events it causes to <c>next</c>. Events never look at the queue.
/// </summary>
public abstract class SimEvent(double time)
{
    public double Time { get; } = time;
    public abstract EventKind Kind { get; }

    public abstract void Handle(Simulation sim, List<SimEvent> next);
}

/// <summary>The total order of the event queue: (time, kind, sequence number of scheduling).</summary>
public readonly record struct EventKey(double Time, EventKind Kind, long Sequence) : IComparable<EventKey>
{
    public int CompareTo(EventKey other)
    {
        int c = Time.CompareTo(other.Time);
        if (c != 0) return c;
        c = Kind.CompareTo(other.Kind);
        return c != 0 ? c : Sequence.CompareTo(other.Sequence);
    }
}

/// <summary>Request <see cref="Index"/> of the workload arrives; the next arrival is chained from here.</summary>
public sealed class ArrivalEvent(double time, int index) : SimEvent(time)
{
    public int Index { get; } = index;
    public override EventKind Kind => EventKind.Arrival;
    public override void Handle(Simulation sim, List<SimEvent> next) => sim.OnArrival(Index, next);
}

/// <summary>A replica's step ends: tokens are emitted and the next step starts if there is work.</summary>
public sealed class StepEndEvent(double time, SimReplica replica) : SimEvent(time)
{
    public SimReplica Replica { get; } = replica;
    public override EventKind Kind => EventKind.StepEnd;
    public override void Handle(Simulation sim, List<SimEvent> next) => sim.OnStepEnd(Replica, next);
}

/// <summary>The plan of <see cref="PlanIndex"/> takes effect: routing changes and its switch steps begin.</summary>
public sealed class PlanSwitchEvent(double time, int planIndex) : SimEvent(time)
{
    public int PlanIndex { get; } = planIndex;
    public override EventKind Kind => EventKind.PlanSwitch;
    public override void Handle(Simulation sim, List<SimEvent> next) => sim.OnPlanSwitch(PlanIndex, next);
}

/// <summary>A rebuilt replica has its weights and free devices: it starts serving what queued for it.</summary>
public sealed class ReplicaReadyEvent(double time, SimReplica replica) : SimEvent(time)
{
    public SimReplica Replica { get; } = replica;
    public override EventKind Kind => EventKind.ReplicaReady;
    public override void Handle(Simulation sim, List<SimEvent> next) => sim.OnReplicaReady(Replica, next);
}

/// <summary>A migrating request's KV cache has arrived at <see cref="Target"/>.</summary>
public sealed class KvTransferDoneEvent(double time, SimReplica target, Scheduling.Sequence sequence) : SimEvent(time)
{
    public SimReplica Target { get; } = target;
    public Scheduling.Sequence Sequence { get; } = sequence;
    public override EventKind Kind => EventKind.KvTransferDone;
    public override void Handle(Simulation sim, List<SimEvent> next) => sim.OnKvTransferDone(Target, Sequence, next);
}

/// <summary>An observer looks at the state (every interval while requests are outstanding).</summary>
public sealed class SampleEvent(double time, double interval, Action<Simulation> sampler) : SimEvent(time)
{
    public override EventKind Kind => EventKind.Sample;

    public override void Handle(Simulation sim, List<SimEvent> next)
    {
        sampler(sim);
        if (sim.Metrics.NumFinished < sim.Setup.Requests.Count)
            next.Add(new SampleEvent(Time + interval, interval, sampler));
    }
}
