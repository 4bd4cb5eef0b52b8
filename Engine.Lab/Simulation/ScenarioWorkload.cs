using OServe.Contracts;
using OServe.Planner.Planning;
using OServe.Planner.Workload;

namespace OServe.Engine.Simulation;

/// <summary>
/// A scenario made runnable: its cluster and model, the trace (the file when present, else the
/// fitted synthetic stream), optionally cut to a duration and scaled in rate, held to the model's
/// context (over-long requests clipped, dropped or refused, and counted), typed by k-means,
/// and turned into simulator requests. Every system of a comparison runs on this same object.
/// </summary>
public sealed class ScenarioWorkload
{
    private ScenarioWorkload(Scenario scenario, Cluster cluster, ModelCard model, Trace trace, RequestType[] types, SimRequest[] requests,
        ContextReport context, int[] overPerType)
    {
        Scenario = scenario;
        Cluster = cluster;
        Model = model;
        Trace = trace;
        Types = types;
        Requests = requests;
        Context = context;
        OverContextPerType = overPerType;
    }

    public Scenario Scenario { get; }
    public Cluster Cluster { get; }
    public ModelCard Model { get; }
    /// <summary>The (scaled, cut, context-limited) trace the planners see.</summary>
    public Trace Trace { get; }
    public RequestType[] Types { get; }
    public SimRequest[] Requests { get; }
    /// <summary>How many requests exceeded the model's context, and whether they were clipped or dropped.</summary>
    public ContextReport Context { get; }
    /// <summary>Per type: requests that exceeded the context (clipped ones are typed by their clipped lengths, dropped ones by their own).</summary>
    public int[] OverContextPerType { get; }
    public int NumOverContext => Context.NumOver;
    public IReadOnlyList<string> TypeNames => Types.Select(t => $"t{t.Id}").ToList();
    public double DurationS => Trace.DurationSec;

    /// <summary>One line for every printed table: how many requests exceeded the context and what was done.</summary>
    public string ContextLine => $"{Model.Name}: {Context.Describe()}";

    /// <param name="tracePath">Overrides the scenario's trace path (resolved against the working directory); its format is detected from its content.</param>
    /// <param name="rateScale">Multiplies the arrival rate (divides every arrival time).</param>
    /// <param name="overContext">Overrides the scenario's policy for requests longer than the model's context.</param>
    /// <param name="scenarioLines">Where the scenario's fields are, for constraint errors with file and line.</param>
    public static ScenarioWorkload Load(Scenario scenario, string scenarioDir, Func<string, string?, Cluster> clusters, Func<string, string?, ModelCard> models,
        string? tracePath = null, double rateScale = 1.0, double? durationS = null, OverContext? overContext = null, SourceMap? scenarioLines = null)
    {
        if (!(rateScale > 0) || double.IsInfinity(rateScale))
            throw new ArgumentException($"--rate-scale must be a positive number, got {rateScale}");
        var cluster = clusters(scenario.Cluster, scenarioDir);
        PlanConstraints.EnsureValid(scenario.Constraints, cluster, scenarioLines);
        var model = models(scenario.Model, scenarioDir);
        var workload = scenario.Workload;
        if (tracePath is not null)
        {
            if (!File.Exists(tracePath)) throw new ArgumentException($"--trace: file '{tracePath}' not found");
            var detected = WorkloadSource.detectFormat(tracePath);
            if (detected.IsError) throw new ArgumentException($"--trace: {string.Join("; ", detected.ErrorValue)}");
            workload = workload with
            {
                Trace = (workload.Trace ?? new TraceRef { Path = tracePath }) with { Path = Path.GetFullPath(tracePath), Format = detected.ResultValue },
            };
        }
        var policy = overContext ?? workload.OverContext;
        var loaded = WorkloadSource.load(workload, scenarioDir);
        if (loaded.IsError) throw new ArgumentException(string.Join("; ", loaded.ErrorValue));
        var trace = loaded.ResultValue;
        var scaled = trace.Requests.Where(r => durationS is not double d || r.Arrival < d)
            .Select(r => new Request(r.Arrival / rateScale, r.InputTokens, r.OutputTokens)).ToArray();
        trace = new Trace(trace.Source + (rateScale != 1 ? $" x{rateScale:0.###} rate" : ""), scaled, trace.NumDropped, trace.DropReason);
        var limited = ContextLimit.apply(policy, model.MaxContext, trace);
        if (limited.IsError) throw new ArgumentException($"workload '{workload.Name}': {limited.ErrorValue}");
        var (kept, context) = limited.ResultValue;
        // Types are fitted on the lengths the model will see, so no type's centroid exceeds the context.
        var typing = RequestTyping.fit(new TypingOptions(workload.NumTypes, TypingOptions.Default.Seed, TypingOptions.Default.MaxIterations), kept.Requests);
        if (typing.IsError) throw new ArgumentException($"workload '{workload.Name}': {typing.ErrorValue}");
        var types = typing.ResultValue;
        var overPerType = new int[types.Length];
        for (int i = 0; i < scaled.Length; i++)
            if (context.IsOver[i])
            {
                var r = policy == OverContext.Clip ? ContextLimit.clip(model.MaxContext, scaled[i]) : scaled[i];
                overPerType[RequestTyping.classify(types, r.InputTokens, r.OutputTokens)]++; // type ids are their indices
            }
        var requests = kept.Requests;
        var sim = new SimRequest[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            var r = requests[i];
            sim[i] = new SimRequest(i, r.Arrival, r.InputTokens, r.OutputTokens, RequestTyping.classify(types, r.InputTokens, r.OutputTokens));
        }
        return new ScenarioWorkload(scenario, cluster, model, kept, types, sim, context, overPerType);
    }
}
