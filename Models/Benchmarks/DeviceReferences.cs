using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace OServe.Models.Benchmarks;

/// <summary>
/// What the device itself can do, measured the way ../shared/calibration measured the H200: memory
/// bandwidth (on a GPU a device-to-device copy, bytes read + written; on the CPU a full read), a
/// large matmul's FLOP/s in the benchmark dtype, and the cost of launching one small kernel.
/// </summary>
public sealed record DeviceReferences(double BandwidthBytesPerSecond, string BandwidthKind, double MatmulFlops, int MatmulSize,
    double LaunchHostMicroseconds, double LaunchDeviceMicroseconds)
{
    public static DeviceReferences Measure(Device device, ScalarType dtype, long bandwidthBytes)
    {
        using var noGrad = no_grad();
        bool cuda = device.type == DeviceType.CUDA;
        double bandwidth = cuda ? CopyBandwidth(device, bandwidthBytes) : ReadBandwidth(bandwidthBytes);
        int n = cuda ? 8192 : 1024;
        double flops = TimeMatmul(device, cuda ? dtype : ScalarType.Float32, n);
        var (host, total) = Launch(device);
        return new DeviceReferences(bandwidth, cuda ? "copy (read + write)" : "read (sum)", flops, n, host, total);
    }

    /// <summary>Read bandwidth in bytes/s: the best of several full sums over a buffer far larger than the caches.</summary>
    public static double ReadBandwidth(long bytes)
    {
        using var buffer = ones(bytes / 4, ScalarType.Float32);
        double best = 0;
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var s = buffer.sum()) s.item<float>();
            best = Math.Max(best, bytes / sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    private static double CopyBandwidth(Device device, long bytes)
    {
        using var source = empty(bytes, ScalarType.Byte, device);
        using var target = empty_like(source);
        target.copy_(source);
        DeviceSelection.Synchronize(device);
        const int reps = 10;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) target.copy_(source);
        DeviceSelection.Synchronize(device);
        return 2.0 * bytes * reps / sw.Elapsed.TotalSeconds;
    }

    private static double TimeMatmul(Device device, ScalarType dtype, int n)
    {
        using var a = randn(n, n, dtype, device);
        using (a.matmul(a)) DeviceSelection.Synchronize(device);
        int reps = device.type == DeviceType.CUDA ? 20 : 3;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < reps; i++) using (a.matmul(a)) { }
        DeviceSelection.Synchronize(device);
        return 2.0 * n * n * (double)n * reps / sw.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Microseconds per one-element in-place add issued back to back: as seen by the host (the
    /// launch call alone) and until the device has run them all. Without CUDA graphs every kernel of
    /// a step pays at least the larger of the two.
    /// </summary>
    private static (double Host, double Total) Launch(Device device)
    {
        using var x = zeros(1, ScalarType.Float32, device);
        // Operand and alpha held for the whole loop: a Scalar made per call can be finalized while
        // the native add still reads it (KeptScalars' remarks).
        using var one = 1.ToScalar();
        const int n = 2000;
        for (int i = 0; i < 200; i++) x.add_(one, one);
        DeviceSelection.Synchronize(device);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++) x.add_(one, one);
        double host = sw.Elapsed.TotalSeconds;
        DeviceSelection.Synchronize(device);
        double total = sw.Elapsed.TotalSeconds;
        return (host / n * 1e6, total / n * 1e6);
    }
}
