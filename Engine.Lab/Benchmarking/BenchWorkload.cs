using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using OServe.Planner.Workload;

namespace OServe.Engine.Benchmarking;

/// <summary>One request to send: when (seconds after the start) and how many tokens in and out.</summary>
public readonly record struct PlannedRequest(double ArrivalSec, int InputLen, int OutputLen);

/// <summary>The requests of a run, before prompts exist. Notes say what was adjusted and why.</summary>
public sealed record BenchWorkload(PlannedRequest[] Requests, string Description, IReadOnlyList<string> Notes)
{
    /// <summary>Draws lengths and arrivals for the random dataset, or reads a trace with the planner's readers.</summary>
    public static BenchWorkload Build(BenchOptions options)
    {
        // Separate streams, so changing the rate does not change the lengths drawn for the same seed.
        var lengthRng = new Random(options.Seed);
        var arrivalRng = new Random(unchecked(options.Seed * 31 + 17));
        return options.Dataset == BenchDataset.Random
            ? Random(options, lengthRng, arrivalRng)
            : Trace(options, arrivalRng);
    }

    private static BenchWorkload Random(BenchOptions o, Random lengthRng, Random arrivalRng)
    {
        var n = o.NumPrompts ?? 1000;
        var rate = o.RequestRate ?? double.PositiveInfinity;
        var arrivals = ArrivalProcess.Generate(n, rate, o.Burstiness, arrivalRng);
        var requests = new PlannedRequest[n];
        for (var i = 0; i < n; i++)
            requests[i] = new PlannedRequest(arrivals[i], Draw(o.RandomInputLen, o.RandomRangeRatio, lengthRng),
                Draw(o.RandomOutputLen, o.RandomRangeRatio, lengthRng));
        var description = $"random: input {o.RandomInputLen}, output {o.RandomOutputLen}, range ratio {o.RandomRangeRatio}, {ArrivalText(rate, o.Burstiness)}";
        return new BenchWorkload(requests, description, []);
    }

    /// <summary>vLLM's rule: uniform integers in [⌊len·(1−r)⌋, ⌊len·(1+r)⌋], never below 1.</summary>
    private static int Draw(int len, double ratio, Random rng)
    {
        var lo = (int)(len * (1 - ratio));
        var hi = (int)(len * (1 + ratio));
        return Math.Max(1, rng.Next(lo, hi + 1));
    }

    private static BenchWorkload Trace(BenchOptions o, Random arrivalRng)
    {
        var path = o.DatasetPath!;
        var read = o.TraceFormat is { } format ? TraceReader.readAs(format, path) : TraceReader.read(path);
        var trace = Unwrap(read);
        var source = trace.Requests;
        if (source.Length == 0) throw new BenchInputException($"{path}: --dataset-path: the trace has no requests");
        var n = Math.Min(o.NumPrompts ?? source.Length, source.Length);
        var notes = new List<string>();
        if (o.NumPrompts > source.Length)
            notes.Add($"the trace has {source.Length} requests; sending all of them, not the {o.NumPrompts} asked");
        if (trace.NumDropped > 0) notes.Add($"{trace.NumDropped} trace rows skipped: {trace.DropReason}");

        double[] arrivals;
        string timing;
        if (o.RequestRate is { } rate)
        {
            arrivals = ArrivalProcess.Generate(n, rate, o.Burstiness, arrivalRng);
            timing = $"timestamps ignored, {ArrivalText(rate, o.Burstiness)}";
        }
        else
        {
            arrivals = new double[n];
            for (var i = 0; i < n; i++) arrivals[i] = source[i].Arrival * o.TimeScale;
            timing = o.TimeScale == 1 ? "replayed in time" : $"replayed with time scale {o.TimeScale}";
        }

        var requests = new PlannedRequest[n];
        var numClamped = 0;
        for (var i = 0; i < n; i++)
        {
            // A prompt needs a token and max_tokens must be at least 1; traces do log empty ones.
            var input = Math.Max(1, source[i].InputTokens);
            var output = Math.Max(1, source[i].OutputTokens);
            if (input != source[i].InputTokens || output != source[i].OutputTokens) numClamped++;
            requests[i] = new PlannedRequest(arrivals[i], input, output);
        }
        if (numClamped > 0) notes.Add($"{numClamped} requests with 0 input or output tokens sent with 1 instead");
        return new BenchWorkload(requests, $"trace {Path.GetFileName(path)}: {n} requests, {timing}", notes);
    }

    private static Trace Unwrap(FSharpResult<Trace, FSharpList<TraceError>> read)
    {
        if (read.IsOk) return read.ResultValue;
        throw new BenchInputException(read.ErrorValue.Select(e => e.ToString()).ToList());
    }

    private static string ArrivalText(double rate, double burstiness) =>
        double.IsPositiveInfinity(rate) ? "all requests at once"
        : burstiness == 1 ? $"Poisson arrivals at {rate} req/s"
        : $"gamma arrivals at {rate} req/s, burstiness {burstiness}";
}
