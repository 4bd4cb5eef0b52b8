namespace OServe.Models.Llama;

/// <summary>What the rest of OServe may know about the CPU kernels' regimes (the kernels themselves stay internal).</summary>
public static class KernelRegimes
{
    /// <summary>Row counts r at which a step's matmuls switch path between r and r + 1 rows on this CPU.</summary>
    public static IReadOnlyList<int> RowBoundaries(LlamaConfig config) => CpuDecodeMatmul.RowBoundaries(config);
}
