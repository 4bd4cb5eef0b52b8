using System.Text.Json;

namespace OServe.Engine.Serving;

/// <summary>
/// Typed access to a request body's top-level fields that fails with a 400 naming the field, what it
/// must be and what it got. JSON null counts as absent, as OpenAI's SDKs send nulls for unset options.
/// </summary>
public readonly struct RequestFields
{
    private readonly JsonElement _root;

    public RequestFields(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw OpenAIErrorException.BadRequest($"request body: must be a JSON object, got {Describe(root)}");
        _root = root;
    }

    public bool TryGet(string name, out JsonElement value) =>
        _root.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    public JsonElement Require(string name) =>
        TryGet(name, out var value) ? value : throw OpenAIErrorException.BadField(name, "is required");

    public string RequireString(string name)
    {
        var value = Require(name);
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw OpenAIErrorException.BadField(name, $"must be a string, got {Describe(value)}");
    }

    public bool? Bool(string name)
    {
        if (!TryGet(name, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw OpenAIErrorException.BadField(name, $"must be true or false, got {Describe(value)}"),
        };
    }

    /// <summary>An integer in [min, max]; <paramref name="rule"/> words the range for the message.</summary>
    public long? Integer(string name, long min, long max, string rule)
    {
        if (!TryGet(name, out var value)) return null;
        return AsInteger(value, name, min, max, rule);
    }

    public int? PositiveInt(string name) =>
        (int?)Integer(name, 1, int.MaxValue, "must be a positive integer");

    /// <summary>A finite number in [min, max] (or (min, max] when <paramref name="minExclusive"/>).</summary>
    public float? Number(string name, double min, double max, bool minExclusive, string rule)
    {
        if (!TryGet(name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out var x) || !double.IsFinite(x)
            || x < min || (minExclusive && x == min) || x > max)
            throw OpenAIErrorException.BadField(name, $"{rule}, got {Describe(value)}");
        return (float)x;
    }

    /// <summary>A string or a list of strings (OpenAI's "stop"); empty strings are refused.</summary>
    public IReadOnlyList<string> StringOrList(string name)
    {
        if (!TryGet(name, out var value)) return [];
        var items = value.ValueKind switch
        {
            JsonValueKind.String => [value],
            JsonValueKind.Array => value.EnumerateArray().ToList(),
            _ => throw OpenAIErrorException.BadField(name, $"must be a string or a list of strings, got {Describe(value)}"),
        };
        var result = new List<string>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            if (items[i].ValueKind != JsonValueKind.String || items[i].GetString() is not { Length: > 0 } s)
                throw OpenAIErrorException.BadField($"{name}[{i}]", $"must be a non-empty string, got {Describe(items[i])}");
            result.Add(s);
        }
        return result;
    }

    /// <summary>A list of token ids: non-negative, and below <paramref name="vocabSize"/> when it is known.</summary>
    public IReadOnlyList<int> TokenIds(string name, int? vocabSize) =>
        TryGet(name, out var value) ? AsTokenIds(value, name, vocabSize) : [];

    /// <summary>Refuses a field we do not implement unless it holds its do-nothing value.</summary>
    public void RejectUnlessDefault(string name, Func<JsonElement, bool> isDefault, string reason)
    {
        if (TryGet(name, out var value) && !isDefault(value))
            throw OpenAIErrorException.BadField(name, reason);
    }

    public static IReadOnlyList<int> AsTokenIds(JsonElement value, string name, int? vocabSize)
    {
        var (max, rule) = vocabSize is { } size
            ? (size - 1L, $"must be a token id in 0..{size - 1} (the vocabulary has {size} tokens)")
            : (int.MaxValue, "must be a token id (a non-negative integer)");
        if (value.ValueKind != JsonValueKind.Array)
            throw OpenAIErrorException.BadField(name, $"must be a list of token ids, got {Describe(value)}");
        var ids = new List<int>(value.GetArrayLength());
        var i = 0;
        foreach (var item in value.EnumerateArray())
            ids.Add((int)AsInteger(item, $"{name}[{i++}]", 0, max, rule));
        return ids;
    }

    private static long AsInteger(JsonElement value, string name, long min, long max, string rule)
    {
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var n) && n >= min && n <= max)
            return n;
        throw OpenAIErrorException.BadField(name, $"{rule}, got {Describe(value)}");
    }

    /// <summary>The offending value as the client wrote it, shortened so messages stay one line.</summary>
    public static string Describe(JsonElement value)
    {
        const int MaxLength = 40;
        var raw = value.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => $"a list of {value.GetArrayLength()} items",
            _ => value.GetRawText(),
        };
        return raw.Length <= MaxLength ? raw : raw[..MaxLength] + "...";
    }
}
