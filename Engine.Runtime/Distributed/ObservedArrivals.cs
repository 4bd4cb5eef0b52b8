using Orleans;

namespace OServe.Engine.Distributed;

/// <summary>
/// A front end's arrival counts per request type (typed by its <see cref="Control.ArrivalRecorder"/>
/// against the plan's types) over <see cref="Seconds"/>, sent to the controller every few seconds.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ArrivalReport(
    [property: Id(0)] string FrontEnd,
    [property: Id(1)] string[] Types,
    [property: Id(2)] long[] Counts,
    [property: Id(3)] double Seconds);

/// <summary>A front end's report as the controller received it, kept in its storage (<see cref="ObservedArrivals.Snapshot"/>).</summary>
[GenerateSerializer, Immutable]
public sealed record StoredArrival([property: Id(0)] DateTime At, [property: Id(1)] ArrivalReport Report);

/// <summary>
/// The controller's view of the workload: every front end's reports over the last window, summed.
/// Not thread-safe (the controller grain is single-threaded).
/// </summary>
public sealed class ObservedArrivals(TimeSpan window)
{
    private readonly Dictionary<string, List<(DateTime At, ArrivalReport Report)>> _byFrontEnd = new(StringComparer.Ordinal);

    public void Add(ArrivalReport report, DateTime at)
    {
        if (!(report.Seconds > 0) || report.Types.Length != report.Counts.Length)
            return; // an empty or malformed window carries no rate
        if (!_byFrontEnd.TryGetValue(report.FrontEnd, out var reports))
            _byFrontEnd[report.FrontEnd] = reports = [];
        reports.Add((at, report));
        reports.RemoveAll(r => at - r.At > window);
    }

    /// <summary>"short 2.00/s, long 0.40/s over 5 s": the rates <see cref="Rates"/> gives, for the cluster's view; null when nothing was observed.</summary>
    public string? Describe(IReadOnlyList<string> types, DateTime now) =>
        Rates(types, now) is var (rates, seconds)
            ? $"{string.Join(", ", types.Select((t, j) => $"{t} {rates[j]:F2}/s"))} over {seconds:F0} s"
            : null;

    /// <summary>The reports within the window of <paramref name="now"/>, oldest first, for the controller's storage.</summary>
    public StoredArrival[] Snapshot(DateTime now) =>
        _byFrontEnd.Values.SelectMany(r => r).Where(r => now - r.At <= window).OrderBy(r => r.At).Select(r => new StoredArrival(r.At, r.Report)).ToArray();

    /// <summary>Adds stored reports (a re-activated controller's, from storage); those outside the window of <paramref name="now"/> are dropped. Returns how many were kept.</summary>
    public int Restore(IEnumerable<StoredArrival>? stored, DateTime now)
    {
        int kept = 0;
        foreach (var s in stored ?? [])
        {
            if (s.At > now || now - s.At > window)
                continue;
            Add(s.Report, s.At);
            kept++;
        }
        return kept;
    }

    /// <summary>
    /// Requests/s per type of <paramref name="types"/> summed over the front ends that reported
    /// within the window (each: its counts over its seconds), and the seconds observed; null when
    /// nothing was observed (the caller plans with the plan's declared rates).
    /// </summary>
    public (double[] Rates, double Seconds)? Rates(IReadOnlyList<string> types, DateTime now)
    {
        var rates = new double[types.Count];
        double longest = 0;
        foreach (var reports in _byFrontEnd.Values)
        {
            var recent = reports.Where(r => now - r.At <= window).Select(r => r.Report).ToArray();
            double seconds = recent.Sum(r => r.Seconds);
            if (seconds <= 0)
                continue;
            longest = Math.Max(longest, seconds);
            for (int j = 0; j < types.Count; j++)
                rates[j] += recent.Sum(r => Array.IndexOf(r.Types, types[j]) is >= 0 and var k ? r.Counts[k] : 0) / seconds;
        }
        return longest > 0 ? (rates, longest) : null;
    }
}

/// <summary>
/// The front end's side: counts arrivals by the plan's request types (the single-process
/// controller's <see cref="Control.ArrivalRecorder"/>) and makes a report of each stretch. Thread-safe.
/// </summary>
public sealed class ArrivalReporter
{
    private readonly string _frontEnd = Guid.NewGuid().ToString("N")[..12];
    private readonly Lock _lock = new();
    private Control.ArrivalRecorder? _recorder;
    private DateTime _since = DateTime.UtcNow;
    private ArrivalReport? _unsent;

    /// <summary>Follows the plan's request types; counts of a stretch typed by the old ones are dropped with them.</summary>
    public void Follow(Contracts.Plan plan)
    {
        lock (_lock)
        {
            if (_recorder is not null && _recorder.TypeNames.SequenceEqual(plan.RequestTypes.Select(t => t.Name)))
                return;
            _recorder = plan.RequestTypes.Count > 0 ? new Control.ArrivalRecorder(plan.RequestTypes) : null;
            _since = DateTime.UtcNow;
        }
    }

    public void Record(int promptTokens, int maxTokens)
    {
        Control.ArrivalRecorder? recorder;
        lock (_lock)
            recorder = _recorder;
        recorder?.Record(promptTokens, maxTokens);
    }

    /// <summary>A report whose delivery failed: its counts are added to the next one, not lost.</summary>
    public void Unsent(ArrivalReport report)
    {
        lock (_lock)
            _unsent = WithUnsent(report);
    }

    /// <summary>The counts since the last report, or null before a plan is followed.</summary>
    public ArrivalReport? TakeReport()
    {
        lock (_lock)
        {
            if (_recorder is null)
                return null;
            var now = DateTime.UtcNow;
            var report = new ArrivalReport(_frontEnd, _recorder.TypeNames.ToArray(), _recorder.TakeCounts(), (now - _since).TotalSeconds);
            _since = now;
            // A report the controller never got (its worker died) goes out with this one.
            report = WithUnsent(report);
            _unsent = null;
            return report;
        }
    }

    /// <summary><paramref name="report"/> plus the unsent counts and seconds, when they are of the same types (else the unsent ones are dropped with their types).</summary>
    private ArrivalReport WithUnsent(ArrivalReport report) =>
        _unsent is { } u && u.Types.SequenceEqual(report.Types)
            ? report with { Counts = report.Counts.Zip(u.Counts, (a, b) => a + b).ToArray(), Seconds = report.Seconds + u.Seconds }
            : report;
}
