using OServe.Models.Llama;

namespace OServe.Models.Parallelism;

/// <summary>
/// A contiguous part of one canonically named weight: elements [Start, Start + Length) along
/// <see cref="Axis"/>, everything along the other axis. Every slice of a name is cut along that
/// name's <see cref="SplitAxis"/>, so two slices of the same name compare as plain intervals and a
/// whole tensor is the slice [0, full) along that axis.
/// </summary>
public sealed record WeightSlice(string Name, int Axis, long Start, long Length)
{
    public long End => Start + Length;

    public bool Overlaps(WeightSlice other) =>
        Name == other.Name && Axis == other.Axis && Start < other.End && other.Start < End;

    public bool Contains(WeightSlice other) =>
        Name == other.Name && Axis == other.Axis && Start <= other.Start && other.End <= End;

    public override string ToString() => $"{Name}[axis {Axis}: {Start}..{End})";

    /// <summary>The whole tensor of <paramref name="shape"/> as a slice.</summary>
    public static WeightSlice Whole(string name, long[] shape) => new(name, SplitAxis(name), 0, shape[SplitAxis(name)]);

    /// <summary>
    /// The axis tensor parallelism cuts a weight along, in the [out, in] layout: column-parallel
    /// projections (q/k/v, gate/up) and the vocabulary-parallel embedding and classifier split
    /// their rows; row-parallel projections (o, down) split their input columns. Norm weights are
    /// never split (axis 0, always whole).
    /// </summary>
    public static int SplitAxis(string name) =>
        name.EndsWith(".o_proj.weight", StringComparison.Ordinal) || name.EndsWith(".down_proj.weight", StringComparison.Ordinal) ? 1 : 0;

    /// <summary>Norm weights: replicated on every rank, never split.</summary>
    public static bool IsNormName(string name) =>
        name == LlamaWeightNames.FinalNorm || name.EndsWith("layernorm.weight", StringComparison.Ordinal);
}
