using OServe.Contracts;
using OServe.Planner.Planning;
using OServe.Planner.Workload;

namespace OServe.Engine.Simulation;

/// <summary>
/// A scenario made runnable: its cluster and model, the trace (the file when present, else the
/// fitted synthetic stream), optionally cut to a duration and scaled in rate, typed by k-means,
/// and turned into simulator requests. Every system of a comparison runs on this same object.
/// </summary>
public sealed class ScenarioWorkload
{
    private ScenarioWorkload(Scenario scenario, Cluster cluster, ModelCard model, Trace trace, RequestType[] types, SimRequest[] requests, int numClipped)
    {
        Scenario = scenario;
        Cluster = cluster;
        Model = model;
        Trace = trace;
        Types = types;
        Requests = requests;
        NumClipped = numClipped;
    }

    public Scenario Scenario { get; }
    public Cluster Cluster { get; }
    public ModelCard Model { get; }
    /// <summary>The (scaled, cut) trace the planners see.</summary>
    public Trace Trace { get; }
    public RequestType[] Types { get; }
    public SimRequest[] Requests { get; }
    /// <summary>Requests whose prompt + output exceeded the model's context and were shortened to fit.</summary>
    public int NumClipped { get; }
    public IReadOnlyList<string> TypeNames => Types.Select(t => $"t{t.Id}").ToList();
    public double DurationS => Trace.DurationSec;

    /// <param name="tracePath">Overrides the scenario's trace path (resolved against the working directory).</param>
    /// <param name="rateScale">Multiplies the arrival rate (divides every arrival time).</param>
    public static ScenarioWorkload Load(Scenario scenario, string scenarioDir, Func<string, string?, Cluster> clusters, Func<string, string?, ModelCard> models,
        string? tracePath = null, double rateScale = 1.0, double? durationS = null)
    {
        if (!(rateScale > 0) || double.IsInfinity(rateScale))
            throw new ArgumentException($"--rate-scale must be a positive number, got {rateScale}");
        var cluster = clusters(scenario.Cluster, scenarioDir);
        var model = models(scenario.Model, scenarioDir);
        var workload = scenario.Workload;
        if (tracePath is not null)
        {
            if (!File.Exists(tracePath)) throw new ArgumentException($"--trace: file '{tracePath}' not found");
            workload = workload with { Trace = (workload.Trace ?? new TraceRef { Path = tracePath }) with { Path = Path.GetFullPath(tracePath) } };
        }
        var loaded = WorkloadSource.load(workload, scenarioDir);
        if (loaded.IsError) throw new ArgumentException(string.Join("; ", loaded.ErrorValue));
        var trace = loaded.ResultValue;
        var requests = trace.Requests.Where(r => durationS is not double d || r.Arrival < d)
            .Select(r => new Request(r.Arrival / rateScale, r.InputTokens, r.OutputTokens)).ToArray();
        trace = new Trace(trace.Source + (rateScale != 1 ? $" x{rateScale:0.###} rate" : ""), requests, trace.NumDropped, trace.DropReason);
        var typing = RequestTyping.fit(new TypingOptions(workload.NumTypes, TypingOptions.Default.Seed, TypingOptions.Default.MaxIterations), requests);
        if (typing.IsError) throw new ArgumentException($"workload '{workload.Name}': {typing.ErrorValue}");
        var types = typing.ResultValue;
        int maxLen = model.MaxContext, clipped = 0;
        var sim = new SimRequest[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            var r = requests[i];
            int output = Math.Clamp(r.OutputTokens, 1, maxLen - 1);
            int input = Math.Clamp(r.InputTokens, 1, maxLen - output);
            if (output != r.OutputTokens || input != r.InputTokens) clipped++;
            sim[i] = new SimRequest(i, r.Arrival, input, output, RequestTyping.classify(types, r.InputTokens, r.OutputTokens));
        }
        return new ScenarioWorkload(scenario, cluster, model, trace, types, sim, clipped);
    }
}
