using System.Text.Json;
using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Cli;

public sealed class CostModelCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task ReportsEveryShapeWithItsSourceAndTheProfilesFitError()
    {
        var (code, output, error) = await Run("costmodel", "--cluster", "paper-4x8-h100", "--model", "Llama-2-70B");
        Assert.Equal("", error);
        Assert.Equal(0, code);
        Assert.Contains("measured Llama-2-70B tp8 layer times moved from H200 to H100-80GB", output);
        Assert.Contains("fit vs its 135 mixed points (held out)", output);
        // TP1 cannot hold 70B on an 80 GB GPU: shown as infeasible, with the reason.
        Assert.Contains("H100-80GB tp1 pp1 (1 GPUs)", output);
        Assert.Contains("does not fit", output);
        Assert.Contains("chat", output);
        Assert.Contains("code", output);
    }

    [Fact]
    public async Task JsonCarriesTheNumbersAndTheirSource_AndAnUnprofiledModelSaysItIsFitted()
    {
        var (code, output, error) = await Run("costmodel", "--cluster", "paper-4x8-h100", "--model", "Llama-2-7B", "--json");
        Assert.Equal("", error);
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var shapes = doc.RootElement.GetProperty("shapes").EnumerateArray().ToList();
        var tp2 = shapes.Single(s => s.GetProperty("tp").GetInt32() == 2 && s.GetProperty("pp").GetInt32() == 1);
        Assert.Contains("roofline fitted to the H200 profile at tp2", tp2.GetProperty("source").GetString());
        Assert.True(tp2.GetProperty("decode_tokens_per_gpu_sec").GetDouble() > 0);
        var chat = tp2.GetProperty("types").EnumerateArray().First();
        Assert.True(chat.GetProperty("ttft_light_sec").GetDouble() < chat.GetProperty("ttft_saturated_sec").GetDouble(), "queueing near saturation");
    }

    [Fact]
    public async Task WithoutTheGpuProfileTheRooflineIsNamed_AndABadProfilePathIsAnError()
    {
        var (code, output, _) = await Run("costmodel", "--cluster", "paper-4x8-h100", "--model", "Llama-2-70B", "--gpu-profile", "none");
        Assert.Equal(0, code);
        Assert.Contains("analytic roofline", output);
        var (badCode, _, badError) = await Run("costmodel", "--cluster", "paper-4x8-h100", "--model", "Llama-2-70B", "--gpu-profile", "/nonexistent/profile.yaml");
        Assert.Equal(2, badCode);
        Assert.Contains("--gpu-profile: /nonexistent/profile.yaml: GPU step-time profile not found", badError);
    }
}
