using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Cli;

/// <summary>
/// Context limits and trace formats on the command line: over-long requests are counted in every
/// table and clipped, dropped or refused on request; a --trace file's format comes from its content.
/// </summary>
public sealed class ContextAndTraceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-ctx-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await OServeCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>A Mooncake trace with a name that says nothing of its format: 120 requests, every tenth 9,000 tokens long (Llama-2-13B holds 4,096).</summary>
    private string MooncakeTrace()
    {
        var path = Path.Combine(_dir, "requests.log");
        File.WriteAllLines(path, Enumerable.Range(0, 120).Select(i =>
            $$"""{"timestamp": {{i * 500}}, "input_length": {{(i % 10 == 0 ? 9000 : 200 + 7 * i)}}, "output_length": {{20 + i}}, "hash_ids": []}"""));
        return path;
    }

    private string Scenario()
    {
        var path = Path.Combine(_dir, "tiny.yaml");
        File.WriteAllText(path, """
            name: tiny
            cluster: a100-1x8
            model: Llama-2-13B
            workload:
              name: tiny
              synthetic: {seed: 3, duration_s: 60, components: [{profile: azure_conv, rate_rps: 2.0}]}
              window_s: 30
              num_types: 3
            planner: {max_solve_seconds: 0.3}
            """);
        return path;
    }

    [Fact]
    public async Task ATraceIsReadInTheFormatItsContentShows_AndOverLongRequestsAreClippedAndCounted()
    {
        var (code, output, error) = await Run("simulate", Scenario(), "--trace", MooncakeTrace(), "--planner", "static");
        Assert.True(code == 0, error);
        Assert.Contains("requests.log", output);
        Assert.Matches(@"Over the 4096-token context:\s+12 clipped to fit", output);
        Assert.Contains("over ctx", output);
        Assert.Contains("12 of 120 requests (10.0%) exceed the 4096-token context", output);
    }

    [Fact]
    public async Task OverLongRequestsAreDroppedOrRefusedOnRequest()
    {
        var dropped = await Run("simulate", Scenario(), "--trace", MooncakeTrace(), "--planner", "static", "--over-context", "drop");
        Assert.True(dropped.Code == 0, dropped.Err);
        Assert.Matches(@"Requests:\s+108\b", dropped.Out);
        var refused = await Run("simulate", Scenario(), "--trace", MooncakeTrace(), "--over-context", "refuse");
        Assert.Equal(OServeCli.ExitBadInput, refused.Code);
        Assert.Contains("12 of 120 requests exceed the model's 4096-token context", refused.Err);
        Assert.Contains("the longest has 9000 + 130 tokens", refused.Err);
        var bad = await Run("simulate", Scenario(), "--over-context", "trim");
        Assert.Equal(OServeCli.ExitBadInput, bad.Code);
        Assert.Contains("--over-context: 'trim' is not clip, drop or refuse", bad.Err);
    }

    [Fact]
    public async Task ATraceOfNoKnownFormatIsAClearError()
    {
        var path = Path.Combine(_dir, "trace.jsonl");
        await File.WriteAllTextAsync(path, "time,prompt,completion\n1,2,3\n");
        var (code, _, error) = await Run("simulate", Scenario(), "--trace", path);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("trace.jsonl:1: format: cannot tell the trace format from 'time,prompt,completion'", error);
        Assert.Contains("Mooncake JSONL", error);
    }

    [Fact]
    public async Task PlanCountsOverLongRequestsPerType_AndValidateRefusesATypeLongerThanTheContext()
    {
        var planPath = Path.Combine(_dir, "plan.yaml");
        var (code, output, error) = await Run("plan", "--workload", MooncakeTrace(), "--cluster", "a100-1x8", "--model", "Llama-2-13B", "--types", "2", "-o", planPath);
        Assert.True(code == 0, error);
        Assert.Contains("context: Llama-2-13B: 12 of 120 requests (10.0%) exceed the 4096-token context", output);
        Assert.Contains("over ctx", output);
        Assert.Contains("stage served: ", output);
        Assert.Equal(0, (await Run("validate", planPath)).Code);

        var tooLong = Path.Combine(_dir, "long.yaml");
        await File.WriteAllTextAsync(tooLong, (await File.ReadAllTextAsync(planPath)).Replace("input_tokens: ", "input_tokens: 9"));
        var (vcode, _, verror) = await Run("validate", tooLong);
        Assert.Equal(OServeCli.ExitBadInput, vcode);
        Assert.Contains("more than Llama-2-13B's context of 4096: no replica can hold such a request", verror);
    }
}
