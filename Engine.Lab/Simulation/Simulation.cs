using OServe.Contracts;
using OServe.Engine.Execution;
using OServe.Engine.Scheduling;

namespace OServe.Engine.Simulation;

/// <summary>
/// Discrete-event simulation of a deployment serving a workload (Vidur style): the state lives
/// here, events are transitions that mutate it and return the events they cause, ordered by
/// (time, kind, sequence number). Replicas run the engine's own scheduler and simulated runner;
/// plans switch live by their switch steps (<see cref="SwitchExecutor"/>). Deterministic: no
/// randomness, no wall clock, ties broken by scheduling order.
/// </summary>
public sealed class Simulation
{
    private readonly PriorityQueue<SimEvent, EventKey> _queue = new();
    private readonly List<SimEvent> _next = [];
    private readonly VirtualClock _clock = new();
    private readonly List<SimReplica> _replicas = [];
    private readonly SwitchExecutor _switches;
    private long _numScheduled;
    private Dictionary<string, SimReplica> _current = new(StringComparer.Ordinal);
    private Dispatcher? _dispatcher;

    public Simulation(SimulationSetup setup)
    {
        ArgumentNullException.ThrowIfNull(setup);
        if (setup.Plans.Count == 0) throw new ArgumentException("a simulation needs at least one plan", nameof(setup));
        for (int i = 1; i < setup.Requests.Count; i++)
            if (setup.Requests[i].ArrivalS < setup.Requests[i - 1].ArrivalS)
                throw new ArgumentException($"requests must be sorted by arrival: request {i} arrives before request {i - 1}", nameof(setup));
        Setup = setup;
        Metrics = new MetricsCollector(setup.Requests.Count, setup.TypeNames.Count);
        _switches = new SwitchExecutor(this);
    }

    public SimulationSetup Setup { get; }
    public MetricsCollector Metrics { get; }
    public double Now => _clock.Now;
    public long NumEvents { get; private set; }
    /// <summary>Every replica the run created, in creation order (SimReplica.Index).</summary>
    public IReadOnlyList<SimReplica> Replicas => _replicas;
    internal IReadOnlyDictionary<string, SimReplica> Current => _current;
    internal Dispatcher Dispatcher => _dispatcher ?? throw new InvalidOperationException("no plan is in force yet");
    public List<SwitchRecord> SwitchLog { get; } = [];

    private readonly List<(double Interval, Action<Simulation> Sampler)> _samplers = [];

    /// <summary>Calls <paramref name="sampler"/> every <paramref name="interval"/> seconds of virtual time from 0 until every request has finished.</summary>
    public void AddSampler(double interval, Action<Simulation> sampler)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(interval);
        _samplers.Add((interval, sampler));
    }

    /// <param name="progress">Called now and then with the virtual time reached.</param>
    public void Run(Action<double>? progress = null)
    {
        Schedule(new PlanSwitchEvent(0, 0));
        for (int i = 1; i < Setup.Plans.Count; i++)
            Schedule(new PlanSwitchEvent(Math.Max(0, Setup.Plans[i].Window.StartS), i));
        foreach (var (interval, sampler) in _samplers)
            Schedule(new SampleEvent(0, interval, sampler));
        if (Setup.Requests.Count > 0)
            Schedule(new ArrivalEvent(Setup.Requests[0].ArrivalS, 0));

        while (_queue.TryDequeue(out var ev, out _))
        {
            _clock.AdvanceTo(ev.Time);
            _next.Clear();
            ev.Handle(this, _next);
            foreach (var e in _next) Schedule(e);
            if (++NumEvents % 8192 == 0) progress?.Invoke(Now);
        }
        progress?.Invoke(Now);
        CheckConservation();
    }

    private void Schedule(SimEvent e) => _queue.Enqueue(e, new EventKey(e.Time, e.Kind, _numScheduled++));

    internal void OnArrival(int index, List<SimEvent> next)
    {
        var request = Setup.Requests[index];
        var seq = new Sequence(request.Id.ToString(System.Globalization.CultureInfo.InvariantCulture),
            new SyntheticPrompt(request.InputTokens),
            new SamplingParams { MaxTokens = request.OutputTokens, IgnoreEos = true },
            request.ArrivalS, request.TypeIndex);
        Metrics.OnArrival(request.Id, seq);
        var replica = Dispatcher.Route(request.InputTokens, request.OutputTokens);
        replica.Scheduler.Add(seq);
        Poke(replica, next);
        if (index + 1 < Setup.Requests.Count)
            next.Add(new ArrivalEvent(Setup.Requests[index + 1].ArrivalS, index + 1));
    }

    internal void OnStepEnd(SimReplica replica, List<SimEvent> next)
    {
        replica.CompleteStep(Now, Metrics);
        if (replica.Status == ReplicaStatus.Draining)
            _switches.ContinueDrain(replica, next);
        else
            Poke(replica, next);
    }

    internal void OnPlanSwitch(int planIndex, List<SimEvent> next)
    {
        var plan = Setup.Plans[planIndex];
        if (planIndex == 0)
        {
            foreach (var spec in plan.Replicas)
                _current[spec.Id] = Create(spec, ReplicaStatus.Serving);
            _dispatcher = new Dispatcher(plan, _current);
            return;
        }
        _switches.Begin(planIndex, plan, next);
    }

    internal void OnReplicaReady(SimReplica replica, List<SimEvent> next)
    {
        if (replica.Status != ReplicaStatus.Building) return; // cancelled by a later switch
        replica.Status = ReplicaStatus.Serving;
        replica.ReadyAt = Now;
        Poke(replica, next);
    }

    internal void OnKvTransferDone(SimReplica target, Sequence seq, List<SimEvent> next)
    {
        target.NumIncoming--;
        if (target.Status is ReplicaStatus.Draining or ReplicaStatus.Stopped)
        {
            // The target was itself replaced while the KV was in flight: send it on.
            _switches.Migrate(target, seq, next);
            return;
        }
        target.Scheduler.Adopt(seq);
        Poke(target, next);
    }

    internal SimReplica Create(ReplicaSpec spec, ReplicaStatus status)
    {
        var replica = new SimReplica(_replicas.Count, spec, Setup.ReplicaModels(spec), status);
        _replicas.Add(replica);
        return replica;
    }

    internal void SetPlan(Plan plan, Dictionary<string, SimReplica> replicas)
    {
        _current = replicas;
        _dispatcher = new Dispatcher(plan, replicas);
    }

    internal void Poke(SimReplica replica, List<SimEvent> next)
    {
        var end = replica.TryBeginStep(Now);
        if (end is double t) next.Add(new StepEndEvent(t, replica));
    }

    private void CheckConservation()
    {
        if (Metrics.NumArrived != Setup.Requests.Count)
            throw new SimulationException($"{Setup.Requests.Count - Metrics.NumArrived} of {Setup.Requests.Count} requests never arrived");
        var lost = Metrics.Unfinished().Take(5).ToList();
        if (lost.Count > 0)
        {
            var stuck = string.Join("; ", _replicas.Where(r => r.Scheduler.HasUnfinishedSequences).Select(r => r.ToString()));
            throw new SimulationException(
                $"{Setup.Requests.Count - Metrics.NumFinished} requests never finished (first: {string.Join(", ", lost)}); replicas holding work: {stuck}");
        }
    }
}

/// <summary>What one switch did: when it began, when its last new replica was ready, what moved.</summary>
public sealed record SwitchRecord(int PlanIndex, double StartS, int NumKept, int NumRemoved, int NumNew)
{
    public double EndS { get; set; } = double.NaN;
    public int NumKvMoves { get; set; }
    public long KvBytesMoved { get; set; }
    public int NumRequeued { get; set; }
}
