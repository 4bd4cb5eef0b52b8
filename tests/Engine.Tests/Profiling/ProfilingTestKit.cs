using OServe.Engine.Profiling;
using OServe.Models;

namespace OServe.Engine.Tests.Profiling;

/// <summary>The tiny model and grid the end-to-end profiling tests measure (a few seconds on a CPU).</summary>
internal static class ProfilingTestKit
{
    public static LoadedModel TinyModel() =>
        BuiltInModel.Create(new BuiltInModelOptions { Dim = 32, HiddenDim = 64, NumLayers = 1, NumHeads = 2, NumKvHeads = 1, MaxSeqLen = 128, Name = "tiny" });

    public static ProfileGrid TinyGrid(int repeats) => new([8, 40], [0, 1, 3], [0, 4, 24], Repeats: repeats);
}
