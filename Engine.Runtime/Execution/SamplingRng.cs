namespace OServe.Engine.Execution;

/// <summary>
/// Per-request random stream: xoshiro256** seeded through splitmix64. A fixed algorithm (not
/// System.Random) so a request's seed gives the same tokens on every .NET version and machine.
/// </summary>
public sealed class SamplingRng
{
    private ulong _s0, _s1, _s2, _s3;

    public SamplingRng(ulong seed)
    {
        _s0 = SplitMix(ref seed);
        _s1 = SplitMix(ref seed);
        _s2 = SplitMix(ref seed);
        _s3 = SplitMix(ref seed);
    }

    /// <summary>A stream for a request without a seed.</summary>
    public static SamplingRng FromEntropy() => new((ulong)Random.Shared.NextInt64() ^ ((ulong)Random.Shared.Next() << 32));

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    private static ulong SplitMix(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
