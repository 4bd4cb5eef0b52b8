using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace OServe.Contracts.Yaml;

/// <summary>
/// Reads one YAML mapping into a record, field by field, recording an error (file, line, field
/// path, what was expected) for every problem and going on, so a user sees all problems at once.
/// A value with an error reads as a harmless default; the caller throws if any error was found.
/// <see cref="Finish"/> reports fields that were present but never asked for (unknown fields).
/// </summary>
internal sealed class MapReader
{
    private readonly YamlMappingNode _node;
    private readonly ReadContext _ctx;
    private readonly string _path;
    private readonly HashSet<string> _asked = [];

    public MapReader(YamlMappingNode node, ReadContext ctx, string path)
    {
        _node = node; _ctx = ctx; _path = path;
        if (path.Length > 0) ctx.Record(path, node);
    }

    public ReadContext Context => _ctx;
    public YamlNode Node => _node;

    public string Field(string key) => _path.Length == 0 ? key : $"{_path}.{key}";

    private YamlNode? Get(string key, bool required)
    {
        _asked.Add(key);
        if (_node.Children.TryGetValue(new YamlScalarNode(key), out var value))
        {
            _ctx.Record(Field(key), value);
            if (value is YamlScalarNode { Value: null or "" or "~" or "null" } s && s.Style == YamlDotNet.Core.ScalarStyle.Plain)
            {
                if (required) _ctx.Error(value, Field(key), "is required but empty");
                return null;
            }
            return value;
        }
        if (required) _ctx.Error(_node, Field(key), "is required but missing");
        return null;
    }

    private string? Scalar(string key, bool required, string expected)
    {
        var node = Get(key, required);
        if (node is null) return null;
        if (node is YamlScalarNode scalar) return scalar.Value;
        _ctx.Error(node, Field(key), $"expected {expected}, got a {(node is YamlSequenceNode ? "list" : "mapping")}");
        return null;
    }

    /// <summary>Whether the mapping holds the field (an optional list that is absent stays null, not empty).</summary>
    public bool Has(string key) => _node.Children.ContainsKey(new YamlScalarNode(key));

    public string String(string key) => OptString(key, required: true) ?? "";

    public string? OptString(string key, bool required = false) => Scalar(key, required, "a string");

    public int Int(string key, int? min = null, int? max = null) => OptInt(key, min, max, required: true) ?? 0;

    public int? OptInt(string key, int? min = null, int? max = null, bool required = false)
    {
        var text = Scalar(key, required, "an integer");
        if (text is null) return null;
        if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            Error(key, $"expected an integer, got '{text}'");
            return null;
        }
        if (min is { } lo && value < lo)
        {
            Error(key, lo == 1 ? $"{value} is not a positive count" : $"{value} is below the minimum {lo}");
            return null;
        }
        if (max is { } hi && value > hi)
        {
            Error(key, $"{value} is above the maximum {hi}");
            return null;
        }
        return value;
    }

    public long OptLong(string key, long min = 0, long max = long.MaxValue)
    {
        var text = Scalar(key, false, "an integer");
        if (text is null) return 0;
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            Error(key, $"expected an integer, got '{text}'");
            return 0;
        }
        if (value < min) { Error(key, $"{value} is below the minimum {min}"); return 0; }
        if (value > max) { Error(key, $"{value} is above the maximum {max}"); return 0; }
        return value;
    }

    /// <summary>A number; <paramref name="positive"/> rejects zero and negatives, else negatives only; <paramref name="max"/> bounds it.</summary>
    public double Double(string key, bool positive = true, double? max = null) => OptDouble(key, positive, required: true, max) ?? 0;

    public double? OptDouble(string key, bool positive = false, bool required = false, double? max = null, double? min = null)
    {
        var text = Scalar(key, required, "a number");
        if (text is null) return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
        {
            Error(key, $"expected a number, got '{text}'");
            return null;
        }
        if (positive && value <= 0) { Error(key, $"{text} is not a positive number"); return null; }
        if (!positive && value < 0) { Error(key, $"{text} is negative"); return null; }
        if (max is { } hi && value > hi) { Error(key, $"{text} is above the maximum {hi:G}"); return null; }
        if (min is { } lo && value < lo) { Error(key, $"{text} is below the minimum {lo:G}"); return null; }
        return value;
    }

    public bool OptBool(string key, bool fallback)
    {
        var text = Scalar(key, false, "true or false");
        if (text is null) return fallback;
        if (bool.TryParse(text, out var value)) return value;
        Error(key, $"expected true or false, got '{text}'");
        return fallback;
    }

    public TEnum OptEnum<TEnum>(string key, TEnum fallback) where TEnum : struct, Enum
    {
        var text = Scalar(key, false, "a name");
        if (text is null) return fallback;
        if (EnumNames.TryParse<TEnum>(text, out var value)) return value;
        Error(key, $"'{text}' is not one of: {string.Join(", ", EnumNames.All<TEnum>())}");
        return fallback;
    }

    public MapReader? Map(string key, bool required = false)
    {
        var node = Get(key, required);
        if (node is null) return null;
        if (node is YamlMappingNode map) return new MapReader(map, _ctx, Field(key));
        _ctx.Error(node, Field(key), "expected a mapping of fields");
        return null;
    }

    /// <summary>Reads a list of mappings; items that are not mappings are reported and skipped; a list longer than <paramref name="maxCount"/> is refused.</summary>
    public List<T> List<T>(string key, Func<MapReader, T> read, bool required = true, int maxCount = int.MaxValue)
    {
        var result = new List<T>();
        var node = Get(key, required);
        if (node is null) return result;
        if (node is not YamlSequenceNode seq)
        {
            _ctx.Error(node, Field(key), "expected a list");
            return result;
        }
        if (seq.Children.Count > maxCount)
        {
            _ctx.Error(node, Field(key), $"{seq.Children.Count} entries is above the maximum {maxCount}");
            return result;
        }
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var item = seq.Children[i];
            var path = $"{Field(key)}[{i}]";
            if (item is YamlMappingNode map)
            {
                var reader = new MapReader(map, _ctx, path);
                result.Add(read(reader));
                reader.Finish();
            }
            else _ctx.Error(item, path, "expected a mapping of fields");
        }
        return result;
    }

    public List<string> StringList(string key, bool required = true)
    {
        var result = new List<string>();
        var node = Get(key, required);
        if (node is null) return result;
        if (node is not YamlSequenceNode seq)
        {
            _ctx.Error(node, Field(key), "expected a list");
            return result;
        }
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var path = $"{Field(key)}[{i}]";
            if (seq.Children[i] is YamlScalarNode { Value: { } text })
            {
                _ctx.Record(path, seq.Children[i]);
                result.Add(text);
            }
            else _ctx.Error(seq.Children[i], path, "expected a string");
        }
        return result;
    }

    /// <summary>A mapping of names to finite numbers (e.g. routing weights).</summary>
    public Dictionary<string, double> NumberMap(string key)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        var node = Get(key, true);
        if (node is null) return result;
        if (node is not YamlMappingNode map)
        {
            _ctx.Error(node, Field(key), "expected a mapping of names to numbers");
            return result;
        }
        foreach (var (k, v) in map.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            var path = $"{Field(key)}.{name}";
            _ctx.Record(path, v);
            // Signs are the contract's rule (PlanChecks reports a negative weight), not the reader's.
            if (v is YamlScalarNode { Value: { } text }
                && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var w) && double.IsFinite(w))
                result[name] = w;
            else _ctx.Error(v, path, $"expected a number, got '{(v as YamlScalarNode)?.Value}'");
        }
        return result;
    }

    public void Error(string key, string message) =>
        _ctx.Error(_node.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : _node, Field(key), message);

    /// <summary>Marks every field as read: after an error that makes the rest meaningless (an unknown kind), only that error is reported.</summary>
    public void IgnoreRest()
    {
        foreach (var (key, _) in _node.Children)
            if (key is YamlScalarNode { Value: { } name }) _asked.Add(name);
    }

    /// <summary>Reports every field present in the mapping that the reader never asked for.</summary>
    public void Finish()
    {
        var expected = string.Join(", ", _asked.Order(StringComparer.Ordinal));
        foreach (var (key, _) in _node.Children)
        {
            var name = (key as YamlScalarNode)?.Value ?? "?";
            if (!_asked.Contains(name))
                _ctx.Error(key, Field(name), $"unknown field (expected one of: {expected})");
        }
    }
}
