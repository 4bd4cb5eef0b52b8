using YamlDotNet.RepresentationModel;

namespace OServe.Contracts.Yaml;

/// <summary>
/// State of one file being read: its name for messages, the errors found so far, and the line
/// of every field read (so later cross-file checks can point at the right line).
/// </summary>
internal sealed class ReadContext(string file)
{
    private readonly List<ContractError> _errors = [];
    private readonly Dictionary<string, int> _lines = [];

    public string File { get; } = file;
    public IReadOnlyList<ContractError> Errors => _errors;
    public SourceMap Lines => new(File, _lines);

    /// <summary>Records an error at the node's line, or, with no node, at the field's recorded line.</summary>
    public void Error(YamlNode? node, string field, string message) =>
        _errors.Add(new ContractError(File, node is null ? Lines.LineOf(field) : LineOf(node), field, message));

    public void Record(string field, YamlNode node) => _lines[field] = LineOf(node);

    public static int LineOf(YamlNode node) => (int)node.Start.Line;
}

