using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Orchestration;

public sealed class ServePlanCommandTests
{
    [Fact]
    public async Task Serve_with_a_plan_it_cannot_build_exits_2_naming_the_file_line_and_field()
    {
        // Valid for the cluster, but tp=3 does not divide the built-in model's 8 attention heads.
        var tp2 = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "scenarios", "plans", "builtin-1x-tp2.yaml"));
        var dir = Directory.CreateTempSubdirectory("oserve-plan-").FullName;
        var plan = Path.Combine(dir, "builtin-1x-tp3.yaml");
        File.WriteAllText(plan, tp2.Replace("devices: [node0/0, node0/1], tp: 2", "devices: [node0/0, node0/1, node0/2], tp: 3"));
        Assert.Contains("tp: 3", File.ReadAllText(plan)); // else the serve below would start and never return
        var output = new StringWriter();
        var error = new StringWriter();
        try
        {
            int code = await OServeCli.RunAsync(["serve", "--plan", plan, "--cluster", "cpu-logical-4", "--port", "0"], output, error);

            Assert.Equal(OServeCli.ExitBadInput, code);
            Assert.Matches(@"builtin-1x-tp3\.yaml:\d+ replicas\[0\]\.tp: tp 3 x pp 1 cannot split this model: tp=3 does not divide the model's 8 attention heads", error.ToString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Serve_with_a_plan_for_another_model_exits_2_before_building_anything()
    {
        var plan = Path.Combine(AppContext.BaseDirectory, "scenarios", "plans", "builtin-2x-tp1.yaml");
        var error = new StringWriter();

        int code = await OServeCli.RunAsync(["serve", "--plan", plan, "--cluster", "cpu-logical-4", "--served-model-name", "other", "--port", "0"],
            new StringWriter(), error);

        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Contains("model: plan is for model 'oserve-builtin-random' but the model card is 'other'", error.ToString());
    }
}
