using OServe.Engine.Execution;

namespace OServe.Engine.Simulation;

/// <summary>One measured grid point of <c>oserve profile</c>: a step of that many decodes at that context, plus one fresh prompt of that many tokens.</summary>
public readonly record struct MeasuredStep(int NumDecodes, int Context, int PrefillTokens, double Seconds)
{
    /// <summary>The step's shape as the profiler ran it (decodes at position context - 1, the prompt from position 0).</summary>
    public BatchShape Shape => new(PrefillTokens, PrefillTokens > 0 ? 1 : 0, PrefillTokens * (PrefillTokens / 2.0), NumDecodes, (double)NumDecodes * Context);
}

/// <summary>
/// What a linear step-time model misses, measured: at every profiled grid point the residual
/// (measured - linear), interpolated in between (trilinear over decodes, mean decode context and
/// prefill tokens; clamped at the grid's edges). Added to the linear model it reproduces every
/// measured point and follows the kernels' regime changes (the CPU engine switches its matmul path
/// with the number of rows), which no sum of per-token terms can; beyond the grid the linear model
/// extrapolates with the edge's residual.
/// Decode-free steps have their own axis over prefill tokens. A step with several prompts is looked
/// up at its total prefill tokens; the linear model's per-prompt term covers the extra prompts.
/// </summary>
public sealed class StepTimeTable
{
    private readonly int[] _decodes;   // > 0, ascending
    private readonly int[] _contexts;  // ascending
    private readonly int[] _prefills;  // >= 0, ascending, with 0
    private readonly int[] _prefillOnly; // > 0, ascending: the decode-free axis
    private readonly double[,,] _residual; // [decode, context, prefill]
    private readonly double[] _prefillOnlyResidual;

    /// <exception cref="ArgumentException">When the points are not a full grid (each missing point named).</exception>
    public StepTimeTable(IReadOnlyList<MeasuredStep> points, Func<BatchShape, double> linear)
    {
        ArgumentNullException.ThrowIfNull(points);
        ArgumentNullException.ThrowIfNull(linear);
        var withDecodes = points.Where(p => p.NumDecodes > 0).ToList();
        var decodeFree = points.Where(p => p.NumDecodes == 0).ToList();
        _decodes = [.. withDecodes.Select(p => p.NumDecodes).Distinct().Order()];
        _contexts = [.. withDecodes.Select(p => p.Context).Distinct().Order()];
        _prefills = [.. withDecodes.Select(p => p.PrefillTokens).Distinct().Order()];
        _prefillOnly = [.. decodeFree.Select(p => p.PrefillTokens).Distinct().Order()];
        var problems = new List<string>();
        if (_decodes.Length == 0) problems.Add("no point with decodes > 0");
        if (_prefillOnly.Length == 0) problems.Add("no point with decodes 0 (a prompt alone)");
        if (_prefills.Length > 0 && _prefills[0] != 0) problems.Add("no decode-only point (prefill tokens 0)");
        if (points.Any(p => p.NumDecodes < 0 || p.PrefillTokens < 0 || p.Context < 0 || !(p.Seconds > 0) || (p.NumDecodes == 0 && p.PrefillTokens == 0)))
            problems.Add("every point needs decodes, context and prefill tokens >= 0, a step to take and seconds > 0");

        var byKey = new Dictionary<(int, int, int), double>();
        foreach (var p in withDecodes)
            if (!byKey.TryAdd((p.NumDecodes, p.Context, p.PrefillTokens), p.Seconds - linear(p.Shape)))
                problems.Add($"point decodes {p.NumDecodes}, context {p.Context}, prefill tokens {p.PrefillTokens} appears twice");
        _residual = new double[_decodes.Length, _contexts.Length, _prefills.Length];
        for (int d = 0; d < _decodes.Length; d++)
            for (int c = 0; c < _contexts.Length; c++)
                for (int q = 0; q < _prefills.Length; q++)
                {
                    if (byKey.TryGetValue((_decodes[d], _contexts[c], _prefills[q]), out double r)) _residual[d, c, q] = r;
                    else problems.Add($"missing point decodes {_decodes[d]}, context {_contexts[c]}, prefill tokens {_prefills[q]} (the points must form a full grid)");
                }
        _prefillOnlyResidual = new double[_prefillOnly.Length];
        for (int q = 0; q < _prefillOnly.Length; q++)
        {
            var same = decodeFree.Where(p => p.PrefillTokens == _prefillOnly[q]).ToList();
            if (same.Count > 1) problems.Add($"point decodes 0, prefill tokens {_prefillOnly[q]} appears twice");
            _prefillOnlyResidual[q] = same[0].Seconds - linear(same[0].Shape);
        }
        if (problems.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine, problems.Distinct()));
    }

    public int NumPoints => _decodes.Length * _contexts.Length * _prefills.Length + _prefillOnly.Length;

    /// <summary>The residual to add to the linear model's time for a step of this shape.</summary>
    public double Residual(in BatchShape s)
    {
        if (s.NumDecodes <= 0)
        {
            var (q0, q1, wq) = Bracket(_prefillOnly, s.PrefillTokens);
            return Lerp(_prefillOnlyResidual[q0], _prefillOnlyResidual[q1], wq);
        }
        var (d0, d1, wd) = Bracket(_decodes, s.NumDecodes);
        var (c0, c1, wc) = Bracket(_contexts, s.DecodeContextTokens / s.NumDecodes);
        var (p0, p1, wp) = Bracket(_prefills, s.PrefillTokens);
        double AtDecode(int d) =>
            Lerp(Lerp(_residual[d, c0, p0], _residual[d, c0, p1], wp), Lerp(_residual[d, c1, p0], _residual[d, c1, p1], wp), wc);
        return Lerp(AtDecode(d0), AtDecode(d1), wd);
    }

    private static double Lerp(double a, double b, double w) => a + (b - a) * w;

    /// <summary>Neighbouring axis indices around x and x's weight towards the upper one; clamped at the ends.</summary>
    private static (int Lower, int Upper, double Weight) Bracket(int[] axis, double x)
    {
        if (x <= axis[0]) return (0, 0, 0);
        int last = axis.Length - 1;
        if (x >= axis[last]) return (last, last, 0);
        int upper = 1;
        while (axis[upper] < x) upper++;
        int lower = upper - 1;
        return (lower, upper, (x - axis[lower]) / (axis[upper] - axis[lower]));
    }
}
