namespace OServe.Engine.Profiling;

/// <summary>One batch shape to time: decodes at a context length, plus one fresh prompt of some tokens.</summary>
public readonly record struct ProfilePoint(int NumDecodes, int Context, int PrefillTokens)
{
    public override string ToString() => $"decodes {NumDecodes} @ ctx {Context}, prefill {PrefillTokens}";
}

/// <summary>
/// The batch shapes <c>oserve profile</c> times: every (context, decode count, prefill size), each
/// step repeated and the median kept. Decode-free points are timed once (context does not matter).
/// </summary>
public sealed record ProfileGrid(IReadOnlyList<int> Contexts, IReadOnlyList<int> DecodeCounts, IReadOnlyList<int> PrefillTokens, int Repeats)
{
    /// <summary>The grid without kernel regimes: about 30 s of a 2-core CPU on the built-in model.</summary>
    public static ProfileGrid Default { get; } = new([64, 384, 1024], [0, 1, 2, 4, 8, 16, 32], [0, 16, 64, 256, 768], 5);

    /// <summary>
    /// <see cref="Default"/> plus decode counts on both sides of each row count where the engine's
    /// matmuls switch path (<paramref name="rowBoundaries"/>): a decode-only step of b decodes has b
    /// rows, a step with a prompt b + 1, so b - 1, b and b + 1 decodes straddle the jump and the
    /// profile's table never interpolates across it.
    /// </summary>
    public static ProfileGrid ForRegimes(IReadOnlyList<int> rowBoundaries)
    {
        var decodes = new SortedSet<int>(Default.DecodeCounts);
        foreach (int b in rowBoundaries)
            for (int d = b - 1; d <= b + 1; d++)
                if (d >= 1) decodes.Add(d);
        return Default with { DecodeCounts = [.. decodes] };
    }

    /// <summary>A few seconds: enough shapes to determine every coefficient, fewer repeats.</summary>
    public static ProfileGrid Quick { get; } = new([32, 256], [0, 1, 8], [0, 24, 192], 3);

    public int MaxContext => Contexts.Max();
    public int MaxDecodes => DecodeCounts.Max();
    public int MaxPrefill => PrefillTokens.Max();

    public IEnumerable<ProfilePoint> Points()
    {
        foreach (int p in PrefillTokens.Where(p => p > 0))
            yield return new ProfilePoint(0, 0, p);
        foreach (int c in Contexts)
            foreach (int n in DecodeCounts.Where(n => n > 0))
                foreach (int p in PrefillTokens)
                    yield return new ProfilePoint(n, c, p);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming what cannot be profiled on a model of <paramref name="maxModelLen"/> tokens.</summary>
    public void Validate(int maxModelLen)
    {
        if (Repeats < 1) throw new ArgumentException($"profile grid: repeats must be at least 1, got {Repeats}");
        if (Contexts.Count == 0 || DecodeCounts.Count == 0 || PrefillTokens.Count == 0)
            throw new ArgumentException("profile grid: contexts, decode counts and prefill sizes must each have a value");
        if (Contexts.Any(c => c < 2) || DecodeCounts.Any(n => n < 0) || PrefillTokens.Any(p => p < 0))
            throw new ArgumentException("profile grid: contexts must be >= 2, decode counts and prefill sizes >= 0");
        if (!DecodeCounts.Any(n => n > 0) || !PrefillTokens.Any(p => p > 0))
            throw new ArgumentException("profile grid: needs at least one decode count and one prefill size above 0");
        // Decodes grow by one token per timed step.
        int steps = PrefillTokens.Count * (Repeats + 1);
        if (MaxContext + steps + 1 > maxModelLen)
            throw new ArgumentException($"profile grid: context {MaxContext} + {steps} decode steps exceeds the model's {maxModelLen} tokens");
        if (MaxPrefill + 1 > maxModelLen)
            throw new ArgumentException($"profile grid: prefill of {MaxPrefill} tokens exceeds the model's {maxModelLen} tokens");
    }
}
