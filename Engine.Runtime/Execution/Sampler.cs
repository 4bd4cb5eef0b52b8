using System.Numerics;
using System.Runtime.InteropServices;

namespace OServe.Engine.Execution;

/// <summary>
/// Picks the next token from one row of logits with vLLM's order: temperature, then top-k, then
/// top-p over what is left, then a draw from the request's own random stream. Greedy (temperature
/// 0) and top-k 1 are an argmax. Keeps scratch buffers between calls: one instance per runner
/// thread, not thread-safe. Logits must be finite.
/// </summary>
public sealed class Sampler
{
    private float[] _probs = [];
    private float[] _keys = [];
    private int[] _order = [];

    public int Sample(ReadOnlySpan<float> logits, SamplingParams sampling, SamplingRng rng)
    {
        ArgumentNullException.ThrowIfNull(sampling);
        if (logits.IsEmpty)
            throw new ArgumentException("no logits to sample from", nameof(logits));
        if (sampling.IsGreedy || sampling.TopK == 1)
            return ArgMax(logits);

        int vocab = logits.Length;
        EnsureCapacity(vocab);
        var probs = _probs.AsSpan(0, vocab);
        // Unnormalised softmax of logits / T: the draw below scales by the kept mass instead.
        float max = Max(logits);
        float invT = 1f / sampling.Temperature;
        for (int i = 0; i < vocab; i++)
            probs[i] = MathF.Exp((logits[i] - max) * invT);

        int topK = sampling.TopK > 0 && sampling.TopK < vocab ? sampling.TopK : vocab;
        bool useTopP = sampling.TopP < 1f;
        if (topK == vocab && !useTopP)
            return Draw(probs, rng);

        // Candidates by descending probability: keys are -p so an ascending sort puts the best first.
        var keys = _keys.AsSpan(0, vocab);
        var order = _order.AsSpan(0, vocab);
        for (int i = 0; i < vocab; i++)
        {
            keys[i] = -probs[i];
            order[i] = i;
        }
        if (topK < vocab)
            SelectSmallest(keys, order, topK);
        keys[..topK].Sort(order[..topK]);

        int kept = topK;
        if (useTopP)
        {
            double mass = 0;
            for (int i = 0; i < topK; i++)
                mass -= keys[i];
            // Smallest prefix whose share of the top-k mass reaches top_p; at least one token.
            double cumulative = 0, target = sampling.TopP * mass;
            for (kept = 0; kept < topK;)
            {
                cumulative -= keys[kept++];
                if (cumulative >= target)
                    break;
            }
        }

        double total = 0;
        for (int i = 0; i < kept; i++)
            total -= keys[i];
        double u = rng.NextDouble() * total;
        for (int i = 0; i < kept; i++)
        {
            u += keys[i];
            if (u < 0)
                return order[i];
        }
        return order[kept - 1]; // rounding left u at the very end
    }

    /// <summary>Index of the largest logit; the lowest index on ties.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        float max = Max(logits);
        if (float.IsNaN(max))
            throw new ArgumentException("logits contain NaN", nameof(logits));
        return logits.IndexOf(max);
    }

    private static float Max(ReadOnlySpan<float> values)
    {
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vector.IsHardwareAccelerated && values.Length >= 2 * Vector<float>.Count)
        {
            var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
            var acc = vectors[0];
            for (int v = 1; v < vectors.Length; v++)
                acc = Vector.Max(acc, vectors[v]);
            for (int lane = 0; lane < Vector<float>.Count; lane++)
                max = MathF.Max(max, acc[lane]);
            i = vectors.Length * Vector<float>.Count;
        }
        for (; i < values.Length; i++)
            max = MathF.Max(max, values[i]);
        return max;
    }

    private static int Draw(ReadOnlySpan<float> weights, SamplingRng rng)
    {
        double total = 0;
        foreach (float w in weights)
            total += w;
        double u = rng.NextDouble() * total;
        for (int i = 0; i < weights.Length; i++)
        {
            u -= weights[i];
            if (u < 0)
                return i;
        }
        for (int i = weights.Length - 1; i >= 0; i--)
            if (weights[i] > 0)
                return i;
        return weights.Length - 1;
    }

    /// <summary>Quickselect: afterwards keys[..k] hold the k smallest keys (unordered), order permuted alike.</summary>
    private static void SelectSmallest(Span<float> keys, Span<int> order, int k)
    {
        int lo = 0, hi = keys.Length - 1;
        while (lo < hi)
        {
            float pivot = keys[lo + (hi - lo) / 2];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (keys[i] < pivot) i++;
                while (keys[j] > pivot) j--;
                if (i <= j)
                {
                    (keys[i], keys[j]) = (keys[j], keys[i]);
                    (order[i], order[j]) = (order[j], order[i]);
                    i++;
                    j--;
                }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else return;
        }
    }

    private void EnsureCapacity(int vocab)
    {
        if (_probs.Length >= vocab)
            return;
        _probs = new float[vocab];
        _keys = new float[vocab];
        _order = new int[vocab];
    }
}
