namespace OServe.Engine.Benchmarking;

/// <summary>
/// Request arrival times as in vLLM's benchmark: inter-arrival gaps are Gamma(shape = burstiness,
/// scale = 1 / (rate · burstiness)), so the mean gap is always 1/rate and burstiness 1 is Poisson
/// (exponential gaps). Smaller burstiness gives a larger variance (coefficient of variation 1/√shape).
/// </summary>
public static class ArrivalProcess
{
    /// <summary>Arrival offsets in seconds from the start; the first request arrives at 0.</summary>
    public static double[] Generate(int count, double requestRate, double burstiness, Random rng)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 0);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(burstiness);
        var arrivals = new double[count];
        if (double.IsPositiveInfinity(requestRate)) return arrivals;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(requestRate);
        var scale = 1.0 / (requestRate * burstiness);
        for (var i = 1; i < count; i++)
            arrivals[i] = arrivals[i - 1] + SampleGamma(burstiness, rng) * scale;
        return arrivals;
    }

    /// <summary>A Gamma(shape, 1) draw: Marsaglia–Tsang for shape ≥ 1, boosted by U^(1/shape) below 1.</summary>
    public static double SampleGamma(double shape, Random rng)
    {
        if (shape < 1)
            return SampleGamma(shape + 1, rng) * Math.Pow(UniformOpen(rng), 1.0 / shape);
        if (shape == 1) return -Math.Log(UniformOpen(rng));
        var d = shape - 1.0 / 3.0;
        var c = 1.0 / Math.Sqrt(9.0 * d);
        while (true)
        {
            double x, v;
            do
            {
                x = StandardNormal(rng);
                v = 1.0 + c * x;
            } while (v <= 0);
            v = v * v * v;
            var u = UniformOpen(rng);
            if (u < 1 - 0.0331 * x * x * x * x || Math.Log(u) < 0.5 * x * x + d * (1 - v + Math.Log(v)))
                return d * v;
        }
    }

    private static double UniformOpen(Random rng)
    {
        double u;
        do u = rng.NextDouble(); while (u == 0);
        return u;
    }

    private static double StandardNormal(Random rng) =>
        Math.Sqrt(-2.0 * Math.Log(UniformOpen(rng))) * Math.Cos(2.0 * Math.PI * rng.NextDouble());
}
