using OServe.Engine.Execution;
using Xunit;

namespace OServe.Engine.Tests.Execution;

public sealed class SamplerTests
{
    private static float[] RandomLogits(int seed, int vocab = 1000)
    {
        var rng = new Random(seed);
        var logits = new float[vocab];
        for (int i = 0; i < vocab; i++)
            logits[i] = (float)(rng.NextDouble() * 8 - 4);
        return logits;
    }

    private static float[] LogitsOf(params double[] probabilities) => [.. probabilities.Select(p => (float)Math.Log(p))];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Greedy_is_the_argmax(int seed)
    {
        var logits = RandomLogits(seed);
        int expected = Array.IndexOf(logits, logits.Max());
        var sampler = new Sampler();
        Assert.Equal(expected, sampler.Sample(logits, new SamplingParams { Temperature = 0 }, new SamplingRng(1)));
        Assert.Equal(expected, Sampler.ArgMax(logits));
    }

    [Fact]
    public void ArgMax_takes_the_lowest_index_on_ties_and_rejects_nan()
    {
        Assert.Equal(1, Sampler.ArgMax([0f, 5f, 5f, -1f]));
        Assert.Throws<ArgumentException>(() => Sampler.ArgMax([float.NaN, float.NaN]));
    }

    [Fact]
    public void Top_k_of_one_is_greedy_at_any_temperature()
    {
        var logits = RandomLogits(7);
        var sampler = new Sampler();
        var rng = new SamplingRng(99);
        for (int i = 0; i < 50; i++)
            Assert.Equal(Sampler.ArgMax(logits), sampler.Sample(logits, new SamplingParams { Temperature = 5f, TopK = 1 }, rng));
    }

    [Fact]
    public void The_same_seed_gives_the_same_tokens_and_another_seed_does_not()
    {
        var logits = RandomLogits(11);
        var sampling = new SamplingParams { Temperature = 1.5f, TopP = 0.9f, TopK = 200 };
        int[] Draw(ulong seed)
        {
            var sampler = new Sampler();
            var rng = new SamplingRng(seed);
            return [.. Enumerable.Range(0, 64).Select(_ => sampler.Sample(logits, sampling, rng))];
        }
        Assert.Equal(Draw(42), Draw(42));
        Assert.NotEqual(Draw(42), Draw(43));
    }

    [Fact]
    public void Top_p_keeps_the_smallest_prefix_reaching_the_mass_and_renormalises()
    {
        // p = 0.4, 0.3, 0.2, 0.1 (shuffled); top_p 0.6 keeps {0.4, 0.3}: shares 4/7 and 3/7.
        var logits = LogitsOf(0.2, 0.4, 0.1, 0.3);
        var sampler = new Sampler();
        var rng = new SamplingRng(5);
        var counts = new int[4];
        const int n = 20_000;
        for (int i = 0; i < n; i++)
            counts[sampler.Sample(logits, new SamplingParams { TopP = 0.6f }, rng)]++;
        Assert.Equal(0, counts[0]);
        Assert.Equal(0, counts[2]);
        Assert.InRange(counts[1] / (double)n, 4 / 7.0 - 0.02, 4 / 7.0 + 0.02);
        Assert.InRange(counts[3] / (double)n, 3 / 7.0 - 0.02, 3 / 7.0 + 0.02);
    }

    [Fact]
    public void Top_k_restricts_to_the_k_most_likely_tokens()
    {
        var logits = RandomLogits(3, vocab: 500);
        var top5 = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).Take(5).Select(x => x.i).ToHashSet();
        var sampler = new Sampler();
        var rng = new SamplingRng(8);
        var seen = new HashSet<int>();
        for (int i = 0; i < 2000; i++)
            seen.Add(sampler.Sample(logits, new SamplingParams { Temperature = 3f, TopK = 5 }, rng));
        Assert.Subset(top5, seen);
        Assert.Equal(5, seen.Count); // at temperature 3 all five are drawn
    }

    [Fact]
    public void Full_distribution_sampling_matches_the_softmax_frequencies()
    {
        var logits = LogitsOf(0.5, 0.25, 0.125, 0.125);
        var sampler = new Sampler();
        var rng = new SamplingRng(17);
        var counts = new int[4];
        const int n = 40_000;
        for (int i = 0; i < n; i++)
            counts[sampler.Sample(logits, new SamplingParams(), rng)]++;
        double[] expected = [0.5, 0.25, 0.125, 0.125];
        for (int t = 0; t < 4; t++)
            Assert.InRange(counts[t] / (double)n, expected[t] - 0.015, expected[t] + 0.015);
    }

    [Fact]
    public void Temperature_towards_zero_converges_to_greedy()
    {
        var logits = RandomLogits(21);
        int argmax = Sampler.ArgMax(logits);
        var sampler = new Sampler();
        var rng = new SamplingRng(3);
        int hotHits = Enumerable.Range(0, 500).Count(_ => sampler.Sample(logits, new SamplingParams { Temperature = 2f }, rng) == argmax);
        int coldHits = Enumerable.Range(0, 500).Count(_ => sampler.Sample(logits, new SamplingParams { Temperature = 1e-4f }, rng) == argmax);
        Assert.Equal(500, coldHits);
        Assert.True(hotHits < 100, $"at temperature 2 the argmax came {hotHits} times in 500");
    }
}
