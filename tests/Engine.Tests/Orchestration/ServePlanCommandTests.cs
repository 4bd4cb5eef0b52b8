using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Orchestration;

public sealed class ServePlanCommandTests
{
    [Fact]
    public async Task Serve_with_a_plan_it_cannot_build_exits_2_naming_the_file_line_and_field()
    {
        var plan = Path.Combine(AppContext.BaseDirectory, "scenarios", "plans", "builtin-1x-tp2.yaml");
        var output = new StringWriter();
        var error = new StringWriter();

        int code = await OServeCli.RunAsync(["serve", "--plan", plan, "--cluster", "cpu-logical-4", "--port", "0"], output, error);

        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Matches(@"builtin-1x-tp2\.yaml:\d+ replicas\[0\]\.tp: tp 2 x pp 1: this runtime builds tp=1, pp=1 replicas only", error.ToString());
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
