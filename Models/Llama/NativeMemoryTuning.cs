using System.Runtime.InteropServices;

namespace OServe.Models.Llama;

/// <summary>
/// glibc serves allocations above its mmap threshold with fresh mmap'd pages and returns freed
/// heap tops to the OS, so every decode step's multi-megabyte activations and K/V gathers paid
/// page faults again (measured ~2x step time at batch 32 on this machine's VM). Raising the
/// thresholds keeps those buffers in the heap between steps, as tcmalloc/jemalloc would.
/// Process-wide and idempotent; a no-op where glibc's mallopt is not available.
/// </summary>
internal static class NativeMemoryTuning
{
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;
    private static int applied;

    public static void Apply()
    {
        if (Interlocked.Exchange(ref applied, 1) == 1 || !OperatingSystem.IsLinux()) return;
        try
        {
            mallopt(MMmapThreshold, 32 * 1024 * 1024); // glibc's maximum
            mallopt(MTrimThreshold, 1024 * 1024 * 1024);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (e.g. musl): keep the allocator's defaults.
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);
}
