using OServe.Models;
using static TorchSharp.torch;

namespace OServe.Engine.Execution;

/// <summary>
/// Samples a whole batch on the logits' device so that one small copy per step (the sampled ids)
/// is all that comes back to the host. Same rules as <see cref="Sampler"/> (temperature, then
/// top-k, then top-p over the top-k mass, at least one token; greedy and top-k 1 are an argmax),
/// drawn by inverse CDF over the candidates in descending probability with one uniform per row
/// from the request's own <see cref="SamplingRng"/>, so a seeded request repeats on the same
/// device. Not bit-identical to the host sampler: the host draws untruncated distributions in
/// vocabulary order, and float sums differ between devices.
/// </summary>
public static class DeviceSampler
{
    /// <summary>One row's controls; <paramref name="Uniform"/> in [0, 1) from the request's stream (ignored for argmax rows).</summary>
    public readonly record struct Row(float Temperature, int TopK, float TopP, double Uniform)
    {
        public bool IsArgMax => Temperature <= 0f || TopK == 1;
    }

    /// <param name="logits">[rows, vocab] float32 on any device.</param>
    /// <returns>the sampled id of each row (the step's only device-to-host copy).</returns>
    public static long[] Sample(Tensor logits, IReadOnlyList<Row> rows)
    {
        using var controls = Upload(rows, logits.shape[1], logits.device);
        using var ids = Launch(logits, controls);
        using var host = ids.cpu();
        return host.data<long>().ToArray();
    }

    /// <summary>
    /// The rows' controls on <paramref name="device"/> ([4, rows]: 1/T, k, top_p, uniform), or null
    /// when every row is an argmax. A host-to-device copy waits for the device's queue, so the runner
    /// makes it before launching the forward pass, not between the forward and the sampling.
    /// </summary>
    public static Tensor? Upload(IReadOnlyList<Row> rows, long vocab, Device device)
    {
        if (rows.All(r => r.IsArgMax)) return null;
        int n = rows.Count;
        var controls = new float[4 * n];
        for (int i = 0; i < n; i++)
        {
            var r = rows[i];
            controls[i] = r.IsArgMax ? 1f : 1f / r.Temperature;
            controls[n + i] = r.IsArgMax ? 1 : r.TopK > 0 && r.TopK < vocab ? r.TopK : vocab;
            controls[2 * n + i] = r.TopP;
            controls[3 * n + i] = (float)r.Uniform;
        }
        return tensor(controls, [4, n], device: device);
    }

    /// <summary>Queues the sampling kernels; the int64 ids [rows] stay on the logits' device (the caller copies them back).</summary>
    public static Tensor Launch(Tensor logits, Tensor? controls)
    {
        long n = logits.shape[0], vocab = logits.shape[1];
        using var scope = NewDisposeScope();
        var argMax = logits.argmax(-1);
        if (controls is null) return argMax.MoveToOuterDisposeScope();
        if (controls.shape[1] != n) throw new ArgumentException($"sampling controls for {controls.shape[1]} rows, logits of {n} rows", nameof(controls));
        var c = controls;
        var invT = c[0].unsqueeze(1);
        var k = c[1].unsqueeze(1);
        var topP = c[2].unsqueeze(1);
        var u = c[3].unsqueeze(1);

        var probs = logits.mul(invT).softmax(-1);
        var (sorted, order) = probs.sort(-1, descending: true);
        var rank = KeptScalars.Arange(vocab, ScalarType.Float32, logits.device).unsqueeze(0);
        var inTopK = rank.lt(k);
        var topKMass = sorted.mul(inTopK).sum(-1, keepdim: true);
        // Smallest prefix whose share of the top-k mass reaches top_p: a candidate stays while the mass before it is short of the target.
        var inTopP = sorted.cumsum(-1).Minus_(sorted).lt(topP.mul(topKMass));
        var keep = inTopK.logical_and(inTopP);
        keep.narrow(1, 0, 1).FillScalar_(true); // at least one token
        var cumulative = sorted.mul_(keep).cumsum(-1);
        var threshold = u.mul(cumulative.narrow(1, vocab - 1, 1));
        var lastKept = keep.sum(-1, keepdim: true).SubScalar_(1);
        var index = cumulative.le(threshold).sum(-1, keepdim: true).minimum(lastKept);
        var sampled = order.gather(1, index).squeeze(1);
        return where(k.squeeze(1).EqScalar(1), argMax, sampled).MoveToOuterDisposeScope();
    }
}
