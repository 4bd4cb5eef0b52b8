using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Profiling;

/// <summary>`oserve fidelity` refuses bad input with exit code 2 and a line naming the option, before loading any model.</summary>
public sealed class FidelityCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-fidelity-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Profile(string body)
    {
        var path = Path.Combine(_dir, "profile.yaml");
        File.WriteAllText(path, body);
        return path;
    }

    private string Measured() => Profile("coefficients:\n  iterationOverheadSec: 0.003\n  decodeSecPerSeq: 0.001\n  prefillSecPerToken: 0.0001\n");

    private static async Task<(int Code, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await OServeCli.RunAsync(["fidelity", .. args], output, error);
        return (code, error.ToString());
    }

    [Fact]
    public async Task MissingProfile_SaysHowToMakeOne()
    {
        var (code, err) = await Run();
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("--profile: required", err);
    }

    [Fact]
    public async Task ProfileFileNotFound_NamesTheFile()
    {
        var path = Path.Combine(_dir, "nope.yaml");
        var (code, err) = await Run("--profile", path);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains($"{path}: profile file not found", err);
    }

    [Fact]
    public async Task ProfileWithoutMeasuredTerms_IsRefused()
    {
        var (code, err) = await Run("--profile", Profile("coefficients:\n  prefillMfu: 0.4\n"));
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("holds no measured step-time terms", err);
    }

    [Theory]
    [InlineData("--num-requests", "0", "--num-requests: must be at least 1")]
    [InlineData("--time-scale", "-1", "--time-scale: must be a positive number")]
    [InlineData("--length-scale", "0", "--length-scale: must be a positive number")]
    [InlineData("--max-num-seqs", "0", "--max-num-seqs: must be at least 1")]
    [InlineData("--repeats", "0", "--repeats: must be at least 1")]
    [InlineData("--trace", "/no/such/trace.csv", "--trace: file '/no/such/trace.csv' not found")]
    public async Task BadOption_IsNamed(string option, string value, string message)
    {
        var (code, err) = await Run("--profile", Measured(), option, value);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains(message, err);
    }

    [Fact]
    public async Task ABadThreadCountInTheProfile_IsNamedWithItsLine()
    {
        var path = Profile("coefficients:\n  decodeSecPerSeq: 0.001\nthreads: 0\n");
        var (code, err) = await Run("--profile", path);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains($"{path}:3: threads: '0' is not a whole number >= 1", err);
    }
}
