namespace OServe.Models.Tests;

/// <summary>Finds ../shared next to the repository root (read-only data that is not in the repository).</summary>
internal static class SharedData
{
    public static string? Find(params string[] relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine([dir.FullName, "shared", .. relative]);
            if (dir.GetDirectories(".git").Length > 0 || File.Exists(Path.Combine(dir.FullName, ".git")))
            {
                string beside = Path.Combine([dir.Parent?.FullName ?? dir.FullName, "shared", .. relative]);
                return Path.Exists(beside) ? beside : null;
            }
            if (Path.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static string Stories260K => Find("models", "stories260K") ?? "";

    public static void SkipUnlessStories260K() =>
        Xunit.Skip.If(Find("models", "stories260K", "stories260K.bin") is null,
            "../shared/models/stories260K is absent next to the repository root; this test needs the stories260K model");
}
