using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Cli;

public sealed class ValidateCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task EveryShippedFileValidates()
    {
        var files = Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, "scenarios"), "*.yaml", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Catalog.CardsDirectory, "*.yaml")).ToArray();
        Assert.True(files.Length >= 14, $"only {files.Length} shipped YAML files found");
        var (code, output, error) = await Run(["validate", .. files]);
        Assert.Equal("", error);
        Assert.Equal(0, code);
        Assert.Equal(files.Length, output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task BadPlanReportsFileLineAndFieldWithExitCode2()
    {
        var path = Path.Combine(Path.GetTempPath(), $"oserve-bad-plan-{Guid.NewGuid():N}.yaml");
        await File.WriteAllTextAsync(path, """
            model: Llama-2-70B
            cluster: paper-4x8-h100
            request_types: [{name: t0, input_tokens: 10, output_tokens: 10}]
            replicas:
              - {id: r0, gpu_type: H100-80GB, devices: [node0/0, node0/1, node0/2], tp: 3}
            routing: [{type: t0, weights: {r0: 1}}]
            """);
        try
        {
            var (code, _, error) = await Run("validate", path);
            Assert.Equal(OServeCli.ExitBadInput, code);
            Assert.Equal($"error {path}:5 replicas[0].tp: tp 3 does not divide the 64 attention heads of Llama-2-70B", error.Trim());
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task UnknownBuiltInNameListsTheKnownOnes()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "scenarios", "plans", "llama2-70b-heterogeneous.yaml");
        var (code, _, error) = await Run("validate", path, "--model", "GPT-5");
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("GPT-5: no such model card file, and not a built-in model card name (built-in: Llama-2-13B", error);
    }
}
