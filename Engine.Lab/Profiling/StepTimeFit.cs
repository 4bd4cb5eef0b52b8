using OServe.Engine.Execution;
using OServe.Engine.Simulation;

namespace OServe.Engine.Profiling;

/// <summary>One measured step: its batch shape and its median wall time.</summary>
public readonly record struct StepTiming(BatchShape Shape, double Seconds);

/// <summary>The coefficients of the cost model's measured step time (see <c>CostCoefficients</c>).</summary>
public sealed record StepTimeCoefficients(
    double IterationOverheadSec,
    double PrefillSecPerToken,
    double PrefillSecPerSeq,
    double PrefillSecPerAttentionPair,
    double DecodeSecPerSeq,
    double DecodeSecPerContextToken)
{
    public double Predict(BatchShape s) =>
        IterationOverheadSec + PrefillSecPerToken * s.PrefillTokens + PrefillSecPerSeq * s.NumPrefills
        + PrefillSecPerAttentionPair * s.AttentionPairs + DecodeSecPerSeq * s.NumDecodes + DecodeSecPerContextToken * s.DecodeContextTokens;

    /// <summary>The profile file's keys (the cost model's field names in camelCase) with their values.</summary>
    public IEnumerable<(string Key, double Value)> Entries()
    {
        yield return ("iterationOverheadSec", IterationOverheadSec);
        yield return ("prefillSecPerToken", PrefillSecPerToken);
        yield return ("prefillSecPerSeq", PrefillSecPerSeq);
        yield return ("prefillSecPerAttentionPair", PrefillSecPerAttentionPair);
        yield return ("decodeSecPerSeq", DecodeSecPerSeq);
        yield return ("decodeSecPerContextToken", DecodeSecPerContextToken);
    }
}

/// <summary>A fit and how well it explains the measurements it came from.</summary>
public sealed record StepTimeFitResult(StepTimeCoefficients Coefficients, double RSquared, double MaxRelativeError, double MeanRelativeError, double[] RelativeErrors);

/// <summary>
/// Fits the measured step-time model: non-negative least squares of step time on
/// [1, prefill tokens, prefill chunks, attention pairs, decodes, decode context tokens], each row
/// weighted by 1 / its time so the fit minimises relative error (short decode steps are the most
/// frequent in serving and must not be sacrificed to long prefills). Non-negativity by active set:
/// the most negative coefficient is pinned to 0 and the rest refitted until none is negative.
/// </summary>
public static class StepTimeFit
{
    private const int NumTerms = 6;

    public static StepTimeFitResult Fit(IReadOnlyList<StepTiming> timings)
    {
        ArgumentNullException.ThrowIfNull(timings);
        if (timings.Count < NumTerms)
            throw new ArgumentException($"step-time fit: needs at least {NumTerms} measurements, got {timings.Count}");
        foreach (var t in timings)
            if (!(t.Seconds > 0) || !double.IsFinite(t.Seconds))
                throw new ArgumentException($"step-time fit: a step time must be a positive number, got {t.Seconds} s for {t.Shape}");
        var rows = timings.Select(t => Features(t.Shape)).ToArray();
        // A term the grid never exercises cannot be determined: it stays 0.
        var active = Enumerable.Range(0, NumTerms).Where(j => rows.Any(r => r[j] != 0)).ToList();
        double[] beta;
        while (true)
        {
            beta = Solve(rows, timings, active);
            int worst = -1;
            for (int j = 0; j < NumTerms; j++)
                if (beta[j] < 0 && (worst < 0 || beta[j] < beta[worst])) worst = j;
            if (worst < 0) break;
            active.Remove(worst);
        }
        var k = new StepTimeCoefficients(beta[0], beta[1], beta[2], beta[3], beta[4], beta[5]);
        double mean = timings.Average(t => t.Seconds), ssTot = 0, ssRes = 0;
        var rel = new double[timings.Count];
        for (int i = 0; i < timings.Count; i++)
        {
            double y = timings[i].Seconds, p = k.Predict(timings[i].Shape);
            ssTot += (y - mean) * (y - mean);
            ssRes += (y - p) * (y - p);
            rel[i] = (p - y) / y;
        }
        return new StepTimeFitResult(k, ssTot > 0 ? 1 - ssRes / ssTot : 1, rel.Max(Math.Abs), rel.Average(Math.Abs), rel);
    }

    private static double[] Features(BatchShape s) =>
        [1, s.PrefillTokens, s.NumPrefills, s.AttentionPairs, s.NumDecodes, s.DecodeContextTokens];

    /// <summary>Weighted least squares over the active terms; columns scaled to unit RMS so the normal equations stay well conditioned.</summary>
    private static double[] Solve(double[][] rows, IReadOnlyList<StepTiming> timings, List<int> active)
    {
        int m = active.Count;
        var beta = new double[NumTerms];
        if (m == 0) return beta;
        var scale = new double[m];
        for (int a = 0; a < m; a++)
        {
            double sum = 0;
            for (int i = 0; i < rows.Length; i++)
            {
                double v = rows[i][active[a]] / timings[i].Seconds;
                sum += v * v;
            }
            scale[a] = Math.Sqrt(sum / rows.Length);
        }
        var ata = new double[m, m];
        var atb = new double[m];
        for (int i = 0; i < rows.Length; i++)
        {
            double w = 1 / timings[i].Seconds;
            for (int a = 0; a < m; a++)
            {
                double xa = rows[i][active[a]] * w / scale[a];
                atb[a] += xa * timings[i].Seconds * w;
                for (int b = 0; b < m; b++)
                    ata[a, b] += xa * rows[i][active[b]] * w / scale[b];
            }
        }
        var x = GaussianElimination(ata, atb);
        for (int a = 0; a < m; a++)
            beta[active[a]] = x[a] / scale[a];
        return beta;
    }

    private static double[] GaussianElimination(double[,] a, double[] b)
    {
        int n = b.Length;
        // A tiny ridge keeps a rank-deficient grid (two terms moving together) solvable.
        for (int i = 0; i < n; i++) a[i, i] += 1e-12;
        for (int col = 0; col < n; col++)
        {
            int pivot = col;
            for (int r = col + 1; r < n; r++)
                if (Math.Abs(a[r, col]) > Math.Abs(a[pivot, col])) pivot = r;
            if (pivot != col)
            {
                for (int c = 0; c < n; c++) (a[col, c], a[pivot, c]) = (a[pivot, c], a[col, c]);
                (b[col], b[pivot]) = (b[pivot], b[col]);
            }
            for (int r = col + 1; r < n; r++)
            {
                double f = a[r, col] / a[col, col];
                if (f == 0) continue;
                for (int c = col; c < n; c++) a[r, c] -= f * a[col, c];
                b[r] -= f * b[col];
            }
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double s = b[i];
            for (int c = i + 1; c < n; c++) s -= a[i, c] * x[c];
            x[i] = s / a[i, i];
        }
        return x;
    }
}
