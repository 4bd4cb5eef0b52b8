using OServe.Engine.Benchmarking;
using OServe.Planner.Workload;

namespace OServe.Engine.Profiling;

/// <summary>The scaled trace head a fidelity check replays (see <see cref="FidelityOptions"/>).</summary>
public static class FidelityWorkload
{
    /// <summary>Tokens kept free of every request's budget, for special tokens the server's tokenizer may add.</summary>
    private const int Margin = 8;

    public static BenchWorkload Build(FidelityOptions o, int maxModelLen)
    {
        var trace = Load(o);
        var source = trace.Requests.Skip(o.Skip).Take(o.NumRequests).ToArray();
        if (source.Length == 0)
            throw new ArgumentException($"--skip: the trace has {trace.Requests.Length} requests, none left after skipping {o.Skip}");
        var notes = new List<string>();
        if (source.Length < o.NumRequests) notes.Add($"the trace has only {source.Length} requests after --skip");
        double t0 = source[0].Arrival;
        int numCapped = 0;
        var requests = new PlannedRequest[source.Length];
        for (int i = 0; i < source.Length; i++)
        {
            var r = source[i];
            int output = Math.Clamp((int)Math.Round(r.OutputTokens * o.LengthScale), 1, maxModelLen / 2);
            int input = Math.Clamp((int)Math.Round(r.InputTokens * o.LengthScale), 1, maxModelLen - output - Margin);
            if (output != Math.Max(1, (int)Math.Round(r.OutputTokens * o.LengthScale)) || input != Math.Max(1, (int)Math.Round(r.InputTokens * o.LengthScale)))
                numCapped++;
            requests[i] = new PlannedRequest((r.Arrival - t0) * o.TimeScale, input, output);
        }
        if (numCapped > 0) notes.Add($"{numCapped} requests capped to the model's {maxModelLen}-token context");
        string description = $"{trace.Source}: requests {o.Skip}..{o.Skip + source.Length - 1}, arrival gaps x{o.TimeScale:0.###}, lengths x{o.LengthScale:0.###}";
        return new BenchWorkload(requests, description, notes);
    }

    private static Trace Load(FidelityOptions o)
    {
        if (o.TracePath is null)
        {
            var options = new SyntheticOptions(
                Microsoft.FSharp.Collections.ListModule.OfSeq(o.SyntheticClasses ?? [SyntheticWorkload.azureConv]), 600.0, 8192, o.Seed);
            return SyntheticWorkload.generate(options);
        }
        var read = TraceReader.read(o.TracePath);
        if (read.IsError) throw new ArgumentException(string.Join(Environment.NewLine, read.ErrorValue.Select(e => $"--trace: {e}")));
        return read.ResultValue;
    }
}
