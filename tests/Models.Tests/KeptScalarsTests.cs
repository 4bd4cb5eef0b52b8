using Xunit;
using static TorchSharp.torch;

namespace OServe.Models.Tests;

/// <summary>The kept-scalar ops compute what torch's number overloads compute (they differ only in the scalar's lifetime).</summary>
public sealed class KeptScalarsTests
{
    [Fact]
    public void Each_helper_matches_the_torch_op_it_replaces()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var x = randn(4, 8);
        Assert.True(x.RmsNormalized(1e-5).equal(x.mul(x.square().mean([-1L], keepdim: true).add_(1e-5).rsqrt_())).all().item<bool>());
        Assert.True(x.clone().MulScalar_(0.25).equal(x.mul(0.25)).all().item<bool>());
        Assert.True(x.clone().AddScalar_(2).equal(x.add(2)).all().item<bool>());
        var mask = x.gt(0);
        Assert.True(x.clone().MaskedFillScalar_(mask, double.NegativeInfinity).equal(x.masked_fill(mask, float.NegativeInfinity)).all().item<bool>());
        var ids = tensor(new long[] { 3, 9, 12, 20 });
        Assert.True(ids.SubScalar(10).equal(ids.sub(10)).all().item<bool>());
        Assert.True(ids.SubScalar(10).ClampScalars(0, 5).equal(ids.sub(10).clamp(0, 5)).all().item<bool>());
        Assert.True(ids.LtScalar(10).equal(ids.lt(10)).all().item<bool>() && ids.GeScalar(12).equal(ids.ge(12)).all().item<bool>() && ids.EqScalar(9).equal(ids.eq(9)).all().item<bool>());
        Assert.True(KeptScalars.Arange(5, ScalarType.Int64, CPU).equal(arange(5, ScalarType.Int64)).all().item<bool>());
        Assert.True(zeros(3, dtype: ScalarType.Bool).FillScalar_(true).all().item<bool>());
        var y = randn(4, 8);
        Assert.True(x.Plus(y).equal(x.add(y)).all().item<bool>());
        Assert.True(x.clone().Plus_(y).equal(x.add(y)).all().item<bool>());
        Assert.True(x.clone().Minus_(y).equal(x.sub(y)).all().item<bool>());
    }
}
