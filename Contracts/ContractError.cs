namespace OServe.Contracts;

/// <summary>
/// One problem found in an input file: where it is (file, 1-based line, field path such as
/// <c>nodes[1].gpus</c>) and what was expected. Rendered as <c>cluster.yaml:12 nodes[1].gpus: ...</c>.
/// Line 0 means the value did not come from a file (a plan built in memory).
/// </summary>
public sealed record ContractError(string File, int Line, string Field, string Message)
{
    public override string ToString()
    {
        var where = Line > 0 ? $"{File}:{Line}" : File;
        return Field.Length > 0 ? $"{where} {Field}: {Message}" : $"{where}: {Message}";
    }
}

/// <summary>Thrown by readers and validators with every error found, not just the first.</summary>
public sealed class ContractException(IReadOnlyList<ContractError> errors)
    : Exception(string.Join(Environment.NewLine, errors))
{
    public IReadOnlyList<ContractError> Errors { get; } = errors;
}
