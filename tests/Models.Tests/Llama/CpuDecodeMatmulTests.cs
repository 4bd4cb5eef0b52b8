using OServe.Models.Llama;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

public sealed class CpuDecodeMatmulTests
{
    [SkippableTheory]
    [InlineData(ScalarType.Float32, 1e-4)]
    [InlineData(ScalarType.BFloat16, 2e-2)]
    public void MatchesTorchMatmulIncludingTheTailColumns(ScalarType dtype, double tolerance)
    {
        Skip.IfNot(CpuDecodeMatmul.IsSupported, "this CPU has no AVX-512; the model falls back to torch.mm");
        using var generator = new Generator(5);
        // 304 inputs = 4 unrolled 64-wide steps + 3 single 16-wide steps; 517 outputs split unevenly over the workers.
        using var x = randn([1, 304], generator: generator).to(dtype);
        using var weight = randn([517, 304], generator: generator).to(dtype);
        Assert.True(CpuDecodeMatmul.CanUse(x, weight));
        using var expected = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32));
        using var actual = CpuDecodeMatmul.Multiply(x, weight);
        Assert.Equal(dtype, actual.dtype);
        Assert.Equal(new long[] { 1, 517 }, actual.shape);
        using var scale = expected.abs().max();
        Assert.True(Greedy.MaxAbsDiff(actual, expected) / scale.item<float>() < tolerance);
    }

    [Fact]
    public void OnlyTakesSingleRowsOfMatchingDtypeAndContiguousWeights()
    {
        using var weight = zeros(8, 16);
        using var one = zeros(1, 16);
        using var two = zeros(2, 16);
        using var half = zeros([1, 16], ScalarType.BFloat16);
        using var transposed = zeros(16, 8).t();
        using var odd = zeros(4, 10);
        using var oneOdd = zeros(1, 10);
        Assert.Equal(CpuDecodeMatmul.IsSupported, CpuDecodeMatmul.CanUse(one, weight));
        Assert.False(CpuDecodeMatmul.CanUse(two, weight));
        Assert.False(CpuDecodeMatmul.CanUse(half, weight));
        Assert.False(CpuDecodeMatmul.CanUse(one, transposed));
        Assert.False(CpuDecodeMatmul.CanUse(oneOdd, odd)); // inputs not a multiple of 16
    }
}
