using System.Runtime.InteropServices;

namespace OServe.Engine;

/// <summary>
/// Settings that native libraries read from the process environment when they load. .NET's
/// Environment.SetEnvironmentVariable does not reach the C environment on Unix, so these go
/// through libc's setenv, before the first torch call loads libtorch and its OpenMP runtime.
/// </summary>
internal static class NativeEnvironment
{
    /// <summary>
    /// OpenMP threads that spin while idle starve each other on a small shared CPU (seen here:
    /// 618 ms instead of 49 ms per decode step on 2 busy cores); PASSIVE makes them sleep.
    /// A value the user set is kept.
    /// </summary>
    public static void Apply()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is not null) return;
        try { _ = SetEnv("OMP_WAIT_POLICY", "PASSIVE", 0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    private static extern int SetEnv([MarshalAs(UnmanagedType.LPUTF8Str)] string name, [MarshalAs(UnmanagedType.LPUTF8Str)] string value, int overwrite);
}
