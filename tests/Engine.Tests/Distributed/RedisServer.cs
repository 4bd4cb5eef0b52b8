using System.Diagnostics;
using System.Net.Sockets;

namespace OServe.Engine.Tests.Distributed;

/// <summary>
/// A redis-server of this test's own on 127.0.0.1 and a free port, installed by the project's
/// scripts/install-redis.sh when missing. <see cref="TryStartAsync"/> says why when it cannot be had,
/// so the test skips with that message.
/// </summary>
internal sealed class RedisServer : IDisposable
{
    private readonly Process _process;

    private RedisServer(Process process, int port) => (_process, Port) = (process, port);

    public int Port { get; }
    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<(RedisServer? Server, string? WhyNot)> TryStartAsync()
    {
        var script = RepositoryFile("scripts", "install-redis.sh");
        if (script is null)
            return (null, "scripts/install-redis.sh not found beside the tests");
        var (code, stdout, stderr) = await RunAsync("bash", script);
        var binary = stdout.Trim().Split('\n').LastOrDefault()?.Trim();
        if (code != 0 || string.IsNullOrEmpty(binary) || !File.Exists(binary))
            return (null, $"redis-server could not be installed: {stderr.Trim()}");
        int port = LocalCluster.FreePort();
        var process = Process.Start(new ProcessStartInfo(binary, ["--bind", "127.0.0.1", "--port", port.ToString(), "--save", "", "--appendonly", "no"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        })!;
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        for (int i = 0; i < 100; i++)
        {
            if (process.HasExited)
                return (null, $"redis-server exited at start (code {process.ExitCode}): {process.StandardError.ReadToEnd().Trim()}");
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync("127.0.0.1", port);
                return (new RedisServer(process, port), null);
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        process.Kill();
        return (null, $"redis-server did not listen on 127.0.0.1:{port} within 5 s");
    }

    private static string? RepositoryFile(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "OServe.sln")))
            {
                var path = Path.Combine([dir.FullName, .. parts]);
                return File.Exists(path) ? path : null;
            }
        return null;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    public void Dispose()
    {
        try { _process.Kill(); _process.WaitForExit(5000); }
        catch (InvalidOperationException) { } // already gone
        _process.Dispose();
    }
}
