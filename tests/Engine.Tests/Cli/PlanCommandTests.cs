using OServe.Contracts.Yaml;
using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Cli;

public sealed class PlanCommandTests
{
    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await OServeCli.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"oserve-{Guid.NewGuid():N}-{name}");

    [Fact]
    public async Task PlansTheBuiltInSyntheticScenarioIntoAValidPlanFile()
    {
        var path = Temp("plan.yaml");
        try
        {
            // The built-in copy of the scenario cannot see ../shared, so this runs on the synthetic fallback.
            var (code, output, error) = await Run("plan", "--workload", "opt-66b-azure-shifting-mix", "-o", path);
            Assert.Equal("", error);
            Assert.Equal(0, code);
            Assert.Contains("solve: Optimal", output);
            var plan = ContractYaml.ReadPlan(path);
            Assert.Equal("OPT-66B", plan.Model);
            Assert.NotEmpty(plan.Replicas);
            var (vcode, voutput, _) = await Run("validate", path);
            Assert.Equal(0, vcode);
            Assert.Contains("valid on paper-4x8-h100 for OPT-66B", voutput);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task AScheduleIsOnePlanPerWindow()
    {
        var path = Temp("schedule.yaml");
        try
        {
            var (code, output, error) = await Run("plan", "--workload", "llama-30b-azure-mix", "--schedule", "--max-windows", "3", "-o", path);
            Assert.True(code == 0, error);
            Assert.Equal(3, ContractYaml.ReadPlanSchedule(path).Plans.Count);
            Assert.Contains("switches", output);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public async Task AModelThatFitsNowhereIsExplainedNotAnEmptyPlan()
    {
        var cluster = Temp("cluster.yaml");
        await File.WriteAllTextAsync(cluster, """
            name: tiny
            gpu_types: [{name: G24, memory_gib: 24, tflops: 100, hbm_gbps: 900}]
            nodes: [{name: n0, gpu_type: G24, gpus: 1, intra_link_gbps: 32}]
            inter_node_link_gbps: 10
            """);
        var output = Temp("plan.yaml");
        try
        {
            var (code, _, error) = await Run("plan", "--workload", "llama2-70b-azure-conv", "--cluster", cluster, "-o", output);
            Assert.Equal(OServeCli.ExitFailure, code);
            Assert.StartsWith("error cannot plan this workload:", error);
            Assert.Contains("Llama-2-70B", error);
            Assert.False(File.Exists(output));
        }
        finally { File.Delete(cluster); }
    }

    [Fact]
    public async Task BadOptionsAreNamed()
    {
        var (code, _, error) = await Run("plan", "--workload", "llama2-70b-azure-conv", "--planner", "greedy");
        Assert.Equal(OServeCli.ExitBadInput, code);
        Assert.Equal("error --planner: 'greedy' is not one of cpsat, static, paper-heuristic", error.Trim());

        var trace = Temp("trace.csv");
        await File.WriteAllTextAsync(trace, "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47.0,x,1\n");
        try
        {
            var (tcode, _, terror) = await Run("plan", "--workload", trace, "--model", "Llama-2-70B", "--cluster", "paper-4x8-h100");
            Assert.Equal(OServeCli.ExitBadInput, tcode);
            Assert.Contains($"{trace}:3", terror);
            Assert.Contains("ContextTokens", terror);
        }
        finally { File.Delete(trace); }

        var (scode, _, serror) = await Run("plan", "--workload", "no-such-scenario");
        Assert.Equal(OServeCli.ExitBadInput, scode);
        Assert.Contains("not a built-in scenario", serror);
    }

    [Fact]
    public async Task ATraceFileNeedsAClusterAndAModel()
    {
        var trace = Temp("trace.csv");
        await File.WriteAllTextAsync(trace, "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n");
        try
        {
            var (code, _, error) = await Run("plan", "--workload", trace);
            Assert.Equal(OServeCli.ExitBadInput, code);
            Assert.Contains("--cluster: required when the workload is a trace file", error);
        }
        finally { File.Delete(trace); }
    }

    [Fact]
    public async Task ForecastReportsTheForecasterNextToItsPoissonFloorAndTheBaselines()
    {
        var (code, output, error) = await Run("forecast", "opt-66b-azure-shifting-mix", "--window", "60");
        Assert.True(code == 0, error);
        foreach (var column in new[] { "n/win", "floor", "disp", "auto", "x floor", "auto model", "holt", "naive", "mov.avg" })
            Assert.Contains(column, output);
        Assert.Contains("1 / sqrt(requests per window)", output);
    }
}
