using System.Text;

namespace OServe.Contracts.Yaml;

/// <summary>Enum values are written in snake_case in YAML (<c>copy_shard</c>, <c>paper_heuristic</c>).</summary>
internal static class EnumNames
{
    public static string ToSnake(string pascal)
    {
        var sb = new StringBuilder(pascal.Length + 4);
        for (var i = 0; i < pascal.Length; i++)
        {
            var c = pascal[i];
            if (char.IsUpper(c) && i > 0) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    public static IEnumerable<string> All<TEnum>() where TEnum : struct, Enum =>
        Enum.GetNames<TEnum>().Select(ToSnake);

    public static bool TryParse<TEnum>(string text, out TEnum value) where TEnum : struct, Enum
    {
        foreach (var v in Enum.GetValues<TEnum>())
            if (ToSnake(v.ToString()) == text.Trim().ToLowerInvariant().Replace('-', '_'))
            { value = v; return true; }
        value = default;
        return false;
    }
}
