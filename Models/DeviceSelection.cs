using System.Globalization;
using TorchSharp;

namespace OServe.Models;

/// <summary>
/// The <c>--device</c> values every command accepts: <c>auto</c> (the first CUDA device when
/// TorchSharp sees one, else the CPU), <c>cpu</c>, <c>cuda</c> (device 0) or <c>cuda:N</c>.
/// CUDA comes from the libtorch on the library path (a PyTorch install, see scripts/gpu), so a
/// machine without it answers "no CUDA" here rather than failing later.
/// </summary>
public static class DeviceSelection
{
    /// <summary>Throws <see cref="ArgumentException"/> naming the value and what is available.</summary>
    public static torch.Device Parse(string text)
    {
        string value = text.Trim().ToLowerInvariant();
        if (value == "auto") return IsCudaAvailable() ? new torch.Device(DeviceType.CUDA, 0) : torch.CPU;
        if (value == "cpu") return torch.CPU;
        if (value == "cuda" || value.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (value.Length > 4 && !int.TryParse(value.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out index))
                throw new ArgumentException($"'{text}' is not cuda:N with N a device number");
            if (!IsCudaAvailable())
                throw new ArgumentException($"'{text}': CUDA is not available to TorchSharp in this process " +
                                            "(the CPU libtorch is loaded, or no GPU/driver); see scripts/gpu/README.md to run on a GPU");
            int count = torch.cuda.device_count();
            if (index >= count)
                throw new ArgumentException($"'{text}': this machine has {count} CUDA device(s), numbered 0..{count - 1}");
            return new torch.Device(DeviceType.CUDA, index);
        }
        throw new ArgumentException($"'{text}' is not one of auto, cpu, cuda, cuda:N");
    }

    public static bool IsCudaAvailable()
    {
        try
        {
            return torch.cuda.is_available() && torch.cuda.device_count() > 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>The dtype a command uses when none is given: float32 on the CPU (its kernels are tuned for it), bfloat16 on a GPU.</summary>
    public static torch.ScalarType DefaultDType(torch.Device device) =>
        device.type == DeviceType.CUDA ? torch.ScalarType.BFloat16 : torch.ScalarType.Float32;

    public static string Describe(torch.Device device) => device.type == DeviceType.CUDA ? $"cuda:{device.index}" : "cpu";

    /// <summary>Waits for the device's queued work (a no-op on the CPU); timings of GPU work need it.</summary>
    public static void Synchronize(torch.Device device)
    {
        if (device.type == DeviceType.CUDA) torch.cuda.synchronize(device);
    }
}
