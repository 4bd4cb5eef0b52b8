using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Cli;

public sealed class SweepPlotCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oserve-sweep-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Run(string name, double oserve, double vllm, double best)
    {
        var dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(dir);
        object Sys(string n, double p99, string? role = null) => new { name = n, role, report = new { overall = new { e2e = new { p99 } } } };
        File.WriteAllText(Path.Combine(dir, "results.json"), System.Text.Json.JsonSerializer.Serialize(new
        {
            systems = new[] { Sys("oserve", oserve), Sys("static-tp8-pp1", best, "best static in hindsight"), Sys("static-tp4-pp1", best * 2), Sys("static-vllm-default", vllm) },
        }));
        return dir;
    }

    [Fact]
    public async Task PlotsOneCurvePerBaselineOverTheSweep()
    {
        var png = Path.Combine(_dir, "sweep.png");
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await OServeCli.RunAsync(["sweep-plot", png, "--x-label", "skew", $"0.1={Run("a", 10, 12, 10)}", $"0.7={Run("b", 10, 20, 11)}", "--reference", "0.1=1.14", "0.7=2.66"], output, error);
        Assert.Equal("", error.ToString());
        Assert.Equal(0, code);
        // vLLM default and the best static; the unnamed static shape is not a curve of its own.
        Assert.Contains("2 curves over 2 runs", output.ToString());
        Assert.True(new FileInfo(png).Length > 1000);
    }

    [Fact]
    public async Task SystemsEqualAtEveryPointShareOneLineNamedForBoth()
    {
        var png = Path.Combine(_dir, "same.png");
        var output = new StringWriter();
        // The vLLM default equals the best static at both points (10/10 and 11/11 over OServe's 10).
        int code = await OServeCli.RunAsync(["sweep-plot", png, $"0.1={Run("c", 10, 10, 10)}", $"0.7={Run("d", 10, 11, 11)}"], output, new StringWriter());
        Assert.Equal(0, code);
        Assert.Contains("1 curves over 2 runs (identical systems share a line: best static in hindsight = static-vllm-default)", output.ToString());
    }

    [Fact]
    public async Task AMissingRunOrABadPairIsAUserError()
    {
        var error = new StringWriter();
        Assert.Equal(2, await OServeCli.RunAsync(["sweep-plot", Path.Combine(_dir, "x.png"), $"0.1={Path.Combine(_dir, "nothing")}"], new StringWriter(), error));
        Assert.Contains("results.json: not found", error.ToString());
        Assert.Equal(2, await OServeCli.RunAsync(["sweep-plot", Path.Combine(_dir, "x.png"), "skew=dir"], new StringWriter(), error));
        Assert.Contains("'skew=dir' is not X=VALUE", error.ToString());
    }
}
