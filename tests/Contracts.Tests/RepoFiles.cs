using Xunit;

namespace OServe.Contracts.Tests;

/// <summary>The YAML files the repository ships, as copied next to the test assembly.</summary>
internal static class RepoFiles
{
    public static string Root => AppContext.BaseDirectory;

    public static IEnumerable<string> Under(string folder) =>
        Directory.EnumerateFiles(System.IO.Path.Combine(Root, folder), "*.yaml", SearchOption.AllDirectories).Order();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    public static TheoryData<string> Data(string folder, string? sub = null)
    {
        var data = new TheoryData<string>();
        foreach (var f in Under(folder))
            if (sub is null || f.Contains($"/{sub}/")) data.Add(System.IO.Path.GetRelativePath(Root, f));
        return data;
    }
}
