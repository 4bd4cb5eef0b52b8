using System.Runtime.InteropServices;

namespace OServe.Models.Parallelism;

/// <summary>
/// Evicts one file from the OS page cache (fsync, then posix_fadvise DONTNEED), so a benchmark's
/// "cold reload" reads the storage device rather than memory. Affects only that file.
/// </summary>
internal static class PageCache
{
    private const int PosixFadvDontNeed = 4;

    /// <returns>false where eviction is not available (not Linux/glibc), so the caller can say the read was cached.</returns>
    public static bool TryEvict(string path)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
            stream.Flush(flushToDisk: true);
            return posix_fadvise((int)stream.SafeFileHandle.DangerousGetHandle(), 0, 0, PosixFadvDontNeed) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "posix_fadvise")]
    private static extern int posix_fadvise(int fd, long offset, long length, int advice);
}
