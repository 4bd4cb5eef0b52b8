using OServe.Engine.Cli;
using OServe.Models;
using Xunit;

namespace OServe.Engine.Tests.Cli;

/// <summary>--device, --model-card/--random-weights and the GPU-facing commands: bad input is one line and exit 2.</summary>
public sealed class DeviceOptionTests
{
    private static async Task<(int Code, string Output, string Error)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await OServeCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("serve", "--device", "gpu")]
    [InlineData("bench-model", "--device", "gpu")]
    [InlineData("profile", "--device", "gpu")]
    [InlineData("demo", "--device", "gpu")]
    [InlineData("selftest", "--device", "gpu")]
    public async Task An_unknown_device_is_named(params string[] args)
    {
        var (code, _, error) = await Run(args);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("--device: 'gpu' is not one of auto, cpu, cuda, cuda:N", error);
    }

    [SkippableFact]
    public async Task Cuda_without_a_gpu_says_so()
    {
        Skip.If(DeviceSelection.IsCudaAvailable(), "this machine has CUDA");
        var (code, _, error) = await Run("bench-model", "--device", "cuda");
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("--device: 'cuda': CUDA is not available to TorchSharp in this process", error);
    }

    [Theory]
    [InlineData("needs --random-weights", "serve", "--model-card", "Llama-2-7B")]
    [InlineData("--random-weights: needs --model-card", "serve", "--random-weights")]
    [InlineData("either --model (a checkpoint) or --model-card", "serve", "--model-card", "Llama-2-7B", "--random-weights", "--model", "x.bin")]
    [InlineData("--layers: only with --model-card", "profile", "--layers", "2")]
    [InlineData("architecture Opt has no engine implementation", "bench-model", "--device", "cpu", "--model-card", "OPT-30B")]
    [InlineData("--batch: '0' is not a positive integer", "bench-model", "--device", "cpu", "--batch", "1,0")]
    public async Task Card_options_that_cannot_work_are_refused(string message, params string[] args)
    {
        var (code, _, error) = await Run(args);
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task A_missing_calibration_file_is_named()
    {
        var (code, _, error) = await Run("profile", "--device", "cpu", "--calibration", "no-such-shapes.json");
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("--calibration no-such-shapes.json:", error);
    }

    [Fact]
    public async Task Selftest_on_the_cpu_passes_and_writes_its_json()
    {
        var json = Path.Combine(Path.GetTempPath(), $"oserve-selftest-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, _) = await Run("selftest", "--device", "cpu", "--cards", "Llama-3-8B", "--json", json);
            Assert.True(code == OServeCli.ExitOk, output);
            Assert.Contains("PASS tp2 x pp2 shards on one device == unsharded", output);
            Assert.Contains("PASS device sampler draws", output);
            Assert.Contains("\"status\": \"passed\"", File.ReadAllText(json));
        }
        finally
        {
            File.Delete(json);
        }
    }
}
