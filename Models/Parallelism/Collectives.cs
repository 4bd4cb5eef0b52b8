using static TorchSharp.torch;

namespace OServe.Models.Parallelism;

/// <summary>
/// The collectives a tensor-parallel stage needs, over devices of one process: partial results
/// are summed in rank order (so the result is deterministic) on the first rank's device and the
/// sum is copied to each other device. Ranks on the same torch device (logical CPU devices) share
/// the one sum instead of copying it.
/// </summary>
internal static class Collectives
{
    /// <returns>the sum of <paramref name="partials"/>, one tensor per rank on that rank's device.</returns>
    public static Tensor[] AllReduceSum(Tensor[] partials, Device[] devices)
    {
        if (partials.Length == 1) return partials;
        var root = devices[0];
        var sum = partials[0].clone();
        for (int r = 1; r < partials.Length; r++)
            sum.Plus_(SameDevice(partials[r].device, root) ? partials[r] : partials[r].to(root));
        var result = new Tensor[partials.Length];
        for (int r = 0; r < result.Length; r++)
            result[r] = SameDevice(devices[r], root) ? sum : sum.to(devices[r]);
        return result;
    }

    /// <summary>Concatenates the ranks' parts along <paramref name="dim"/> on <paramref name="target"/>.</summary>
    public static Tensor Gather(Tensor[] parts, long dim, Device target) =>
        parts.Length == 1
            ? (SameDevice(parts[0].device, target) ? parts[0] : parts[0].to(target))
            : cat(parts.Select(p => SameDevice(p.device, target) ? p : p.to(target)).ToArray(), dim);

    public static bool SameDevice(Device a, Device b) => a.type == b.type && a.index == b.index;
}
