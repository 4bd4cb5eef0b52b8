namespace OServe.Engine.Tests.EndToEnd;

/// <summary>Finds ../shared beside the repository (null when absent: tests that need it skip).</summary>
internal static class SharedData
{
    public static string? Path(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "OServe.sln")))
            {
                var path = System.IO.Path.Combine([dir.Parent?.FullName ?? "", "shared", .. parts]);
                return File.Exists(path) || Directory.Exists(path) ? path : null;
            }
        return null;
    }
}
