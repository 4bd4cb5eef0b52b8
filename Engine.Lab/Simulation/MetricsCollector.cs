using OServe.Engine.Scheduling;

namespace OServe.Engine.Simulation;

/// <summary>One finished request as vLLM's benchmark sees it (seconds on the virtual clock).</summary>
public readonly record struct RequestRecord(
    int Id,
    int TypeIndex,
    double ArrivalS,
    double FirstTokenS,
    double FinishS,
    int InputTokens,
    int OutputTokens,
    int NumPreemptions,
    int NumMigrations,
    int ReplicaIndex)
{
    public double Ttft => FirstTokenS - ArrivalS;
    public double E2e => FinishS - ArrivalS;
    /// <summary>Mean gap between output tokens after the first; 0 for a one-token answer.</summary>
    public double Tpot => OutputTokens > 1 ? (FinishS - FirstTokenS) / (OutputTokens - 1) : 0;
}

/// <summary>
/// Records arrivals, tokens and finishes, and checks conservation on the way: a request arrives
/// once, finishes once, and emits exactly its output length in tokens.
/// </summary>
public sealed class MetricsCollector : IRequestObserver
{
    private readonly RequestRecord[] _records;
    private readonly bool[] _arrived;
    private readonly bool[] _finished;
    private readonly int[] _migrations;
    private readonly List<double>[] _itlByType;
    private readonly Dictionary<Sequence, int> _ids = new(ReferenceEqualityComparer.Instance);

    public MetricsCollector(int numRequests, int numTypes)
    {
        _records = new RequestRecord[numRequests];
        _arrived = new bool[numRequests];
        _finished = new bool[numRequests];
        _migrations = new int[numRequests];
        // Slot numTypes holds untyped requests.
        _itlByType = Enumerable.Range(0, numTypes + 1).Select(_ => new List<double>()).ToArray();
    }

    public int NumArrived { get; private set; }
    public int NumFinished { get; private set; }
    public long NumOutputTokens { get; private set; }

    public void OnArrival(int id, Sequence seq)
    {
        if (_arrived[id]) throw new SimulationException($"request {id} arrived twice");
        _arrived[id] = true;
        _ids.Add(seq, id);
        NumArrived++;
    }

    public void OnMigration(Sequence seq) => _migrations[_ids[seq]]++;

    public void OnToken(SimReplica replica, Sequence seq, double now, double interTokenGap)
    {
        NumOutputTokens++;
        if (!double.IsNaN(interTokenGap))
            _itlByType[TypeSlot(seq.TypeIndex)].Add(interTokenGap);
        if (!seq.IsFinished) return;
        int id = _ids[seq];
        if (_finished[id]) throw new SimulationException($"request {id} finished twice");
        if (seq.NumOutputTokens != seq.Sampling.MaxTokens)
            throw new SimulationException($"request {id} finished with {seq.NumOutputTokens} of {seq.Sampling.MaxTokens} output tokens");
        _finished[id] = true;
        NumFinished++;
        _ids.Remove(seq);
        _records[id] = new RequestRecord(id, seq.TypeIndex, seq.ArrivalTime, seq.FirstTokenTime, now,
            seq.NumPromptTokens, seq.NumOutputTokens, seq.NumPreemptions, _migrations[id], replica.Index);
    }

    /// <summary>Ids of requests that arrived but never finished (empty after a correct run).</summary>
    public IEnumerable<int> Unfinished() => Enumerable.Range(0, _records.Length).Where(i => _arrived[i] && !_finished[i]);

    public IReadOnlyList<RequestRecord> Records => _records;

    /// <summary>Inter-token latencies by workload type; the last list holds untyped requests.</summary>
    public IReadOnlyList<List<double>> InterTokenLatencies => _itlByType;

    private int TypeSlot(int type) => type >= 0 && type < _itlByType.Length - 1 ? type : _itlByType.Length - 1;
}
