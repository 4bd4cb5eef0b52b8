using OServe.Models.Llama;
using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests.Llama;

public sealed class CpuDecodeMatmulTests
{
    [SkippableTheory]
    [InlineData(ScalarType.Float32, 1, 1e-4)]
    [InlineData(ScalarType.BFloat16, 1, 2e-2)]
    [InlineData(ScalarType.Float32, 2, 1e-4)]
    [InlineData(ScalarType.Float32, 3, 1e-4)]
    [InlineData(ScalarType.BFloat16, 3, 2e-2)]
    [InlineData(ScalarType.Float32, CpuDecodeMatmul.MaxRows, 1e-4)]
    public void MatchesTorchMatmulIncludingTheTailColumns(ScalarType dtype, int rows, double tolerance)
    {
        Skip.IfNot(CpuDecodeMatmul.IsSupported, "this CPU has no AVX-512; the model falls back to torch.mm");
        using var generator = new Generator(5);
        // 304 inputs = 4 unrolled 64-wide steps + 3 single 16-wide steps; 517 outputs split unevenly over the workers.
        using var x = randn([rows, 304], generator: generator).to(dtype);
        using var weight = randn([517, 304], generator: generator).to(dtype);
        Assert.True(CpuDecodeMatmul.CanUse(x, weight));
        using var expected = nn.functional.linear(x.to(ScalarType.Float32), weight.to(ScalarType.Float32));
        using var actual = CpuDecodeMatmul.Multiply(x, weight);
        Assert.Equal(dtype, actual.dtype);
        Assert.Equal(new long[] { rows, 517 }, actual.shape);
        using var scale = expected.abs().max();
        Assert.True(Greedy.MaxAbsDiff(actual, expected) / scale.item<float>() < tolerance);
    }

    [Fact]
    public void OnlyTakesFewRowsOfMatchingDtypeAndContiguousWeights()
    {
        using var weight = zeros(8, 16);
        using var one = zeros(1, 16);
        using var two = zeros(2, 16);
        using var tooMany = zeros(CpuDecodeMatmul.MaxRows + 1, 16);
        using var half = zeros([1, 16], ScalarType.BFloat16);
        using var transposed = zeros(16, 8).t();
        using var odd = zeros(4, 10);
        using var oneOdd = zeros(1, 10);
        Assert.Equal(CpuDecodeMatmul.IsSupported, CpuDecodeMatmul.CanUse(one, weight));
        Assert.Equal(CpuDecodeMatmul.IsSupported, CpuDecodeMatmul.CanUse(two, weight));
        Assert.False(CpuDecodeMatmul.CanUse(tooMany, weight));
        Assert.True(CpuDecodeMatmul.TakesRows(16, 50257, 256)); // a vocabulary head over a small model
        Assert.False(CpuDecodeMatmul.TakesRows(17, 50257, 256));
        Assert.False(CpuDecodeMatmul.TakesRows(8, 11008, 4096)); // x no longer stays in L1
        Assert.False(CpuDecodeMatmul.TakesRows(8, 768, 256)); // small enough for GEMM to win
        Assert.False(CpuDecodeMatmul.CanUse(half, weight));
        Assert.False(CpuDecodeMatmul.CanUse(one, transposed));
        Assert.False(CpuDecodeMatmul.CanUse(oneOdd, odd)); // inputs not a multiple of 16
    }

    [SkippableFact]
    public void ManyRowsOfAWideThinMatrixMatchTorch()
    {
        Skip.IfNot(CpuDecodeMatmul.IsSupported, "this CPU has no AVX-512; the model falls back to torch.mm");
        using var generator = new Generator(9);
        // 13 rows: three full groups of four and one short group; 8200 outputs make it "wide".
        using var x = randn([13, 96], generator: generator);
        using var weight = randn([8200, 96], generator: generator);
        Assert.True(CpuDecodeMatmul.CanUse(x, weight));
        using var expected = nn.functional.linear(x, weight);
        using var actual = CpuDecodeMatmul.Multiply(x, weight);
        Assert.Equal(new long[] { 13, 8200 }, actual.shape);
        using var scale = expected.abs().max();
        Assert.True(Greedy.MaxAbsDiff(actual, expected) / scale.item<float>() < 1e-4);
    }

    [SkippableTheory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void A_rows_result_is_bit_for_bit_the_same_alone_and_among_other_rows(ScalarType dtype)
    {
        Skip.IfNot(CpuDecodeMatmul.IsSupported, "this CPU has no AVX-512; the model falls back to torch.mm");
        using var generator = new Generator(11);
        using var x = randn([CpuDecodeMatmul.MaxRows, 304], generator: generator).to(dtype);
        using var weight = randn([517, 304], generator: generator).to(dtype);
        using var together = CpuDecodeMatmul.Multiply(x, weight);
        for (int r = 0; r < CpuDecodeMatmul.MaxRows; r++)
        {
            using var row = x.narrow(0, r, 1);
            using var alone = CpuDecodeMatmul.Multiply(row, weight);
            using var same = together.narrow(0, r, 1);
            Assert.True(alone.eq(same).all().item<bool>(), $"row {r} differs when computed with {CpuDecodeMatmul.MaxRows - 1} others");
        }
    }
}
