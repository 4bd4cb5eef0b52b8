namespace OServe.Contracts;

/// <summary>Where each field of a loaded document was (path such as <c>replicas[2].tp</c> -> line).</summary>
public sealed class SourceMap(string file, IReadOnlyDictionary<string, int> lines)
{
    public static SourceMap None(string name) => new(name, new Dictionary<string, int>());

    public string File { get; } = file;

    /// <summary>Line of the field, else of its nearest recorded parent, else 0.</summary>
    public int LineOf(string field)
    {
        for (var f = field; f.Length > 0; f = Parent(f))
            if (lines.TryGetValue(f, out var line)) return line;
        return 0;
    }

    public ContractError Error(string field, string message) => new(File, LineOf(field), field, message);

    private static string Parent(string field)
    {
        var cut = Math.Max(field.LastIndexOf('.'), field.LastIndexOf('['));
        return cut <= 0 ? "" : field[..cut];
    }
}

/// <summary>A value read from a file together with where its fields came from.</summary>
public sealed record Sourced<T>(T Value, SourceMap Lines);
