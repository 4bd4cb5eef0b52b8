using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models;

/// <summary>
/// Tensor ops with a number operand whose native scalar lives until the op has returned.
/// </summary>
/// <remarks>
/// TorchSharp 0.107 turns a number into a <see cref="Scalar"/> (a raw native handle with a
/// finalizer, not tracked by dispose scopes) and passes only its handle to the native call. Once
/// the handle is read the Scalar is unreachable, so a collection during the call can run its
/// finalizer on the finalizer thread and free the native scalar the op is still reading. Under
/// load this happened: `x.square()` (pow with an implicit Scalar 2) failed with libtorch's
/// "INTERNAL ASSERT FAILED at c10/core/Scalar.h:279" in the demo and once in CI, and the request
/// failed. Each helper here disposes its Scalar after the op (`Kept`: a `using` keeps it alive until then);
/// squares are x * x (what pow(x, 2) computes).
/// </remarks>
public static class KeptScalars
{
    /// <summary>
    /// alpha = 1 for tensor + tensor and tensor + number: TorchSharp's add(Tensor) and add_(Scalar)
    /// make a fresh Scalar 1 for their alpha, exposed to the same race (the demo's fresh-clone run
    /// of 2026-12-05 lost two requests to it in RmsNormalized's + eps: "Scalar.h:140", in toFloat);
    /// this one is rooted by a static field and never finalized.
    /// </summary>
    private static readonly Scalar One = 1.ToScalar();
    private static readonly Scalar MinusOne = (-1).ToScalar();

    /// <summary>a + b.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a += b.</summary>
    public static Tensor Plus_(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>a -= b.</summary>
    public static Tensor Minus_(this Tensor a, Tensor b) => a.add_(b, MinusOne);

    /// <summary>Runs <paramref name="op"/> on <paramref name="t"/> and <paramref name="s"/>, and only then disposes <paramref name="s"/>: the Scalar is reachable until the op has returned. The ops are static lambdas: no allocation per call.</summary>
    private static Tensor Kept(Tensor t, Scalar s, Func<Tensor, Scalar, Tensor> op)
    {
        using (s)
            return op(t, s);
    }

    /// <summary>t += value. The alpha is the rooted <see cref="One"/>: add_(Scalar) makes a fresh Scalar 1 for it, as add(Tensor) does.</summary>
    public static Tensor AddScalar_(this Tensor t, double value) => Kept(t, value.ToScalar(), static (t, s) => t.add_(s, One));

    public static Tensor MulScalar_(this Tensor t, double value) => Kept(t, value.ToScalar(), static (t, s) => t.mul_(s));

    public static Tensor MulScalar(this Tensor t, double value) => Kept(t, value.ToScalar(), static (t, s) => t.mul(s));

    public static Tensor SubScalar(this Tensor t, long value) => Kept(t, value.ToScalar(), static (t, s) => t.sub(s));

    public static Tensor SubScalar_(this Tensor t, long value) => Kept(t, value.ToScalar(), static (t, s) => t.sub_(s));

    public static Tensor LtScalar(this Tensor t, long value) => Kept(t, value.ToScalar(), static (t, s) => t.lt(s));

    public static Tensor GeScalar(this Tensor t, long value) => Kept(t, value.ToScalar(), static (t, s) => t.ge(s));

    public static Tensor EqScalar(this Tensor t, long value) => Kept(t, value.ToScalar(), static (t, s) => t.eq(s));

    public static Tensor ClampScalars(this Tensor t, long min, long max)
    {
        using var lo = min.ToScalar();
        using var hi = max.ToScalar();
        return t.clamp(lo, hi);
    }

    public static Tensor MaskedFillScalar_(this Tensor t, Tensor mask, double value)
    {
        using var s = value.ToScalar();
        return t.masked_fill_(mask, s);
    }

    /// <summary>0, 1, ..., stop - 1 (torch.arange with every bound an explicit, kept scalar).</summary>
    public static Tensor Arange(long stop, ScalarType dtype, Device device)
    {
        using var start = 0L.ToScalar();
        using var end = stop.ToScalar();
        using var step = 1L.ToScalar();
        return arange(start, end, step, dtype, device);
    }

    public static Tensor FillScalar_(this Tensor t, bool value) => Kept(t, value.ToScalar(), static (t, s) => t.fill_(s));

    /// <summary>RMS normalisation without a scalar exponent: x * rsqrt(mean(x * x) + eps).</summary>
    public static Tensor RmsNormalized(this Tensor x, double eps) =>
        x.mul(x.mul(x).mean([-1L], keepdim: true).AddScalar_(eps).rsqrt_());
}
