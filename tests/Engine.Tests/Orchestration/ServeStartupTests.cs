using System.Net;
using System.Net.Sockets;
using OServe.Engine.Cli;
using Xunit;

namespace OServe.Engine.Tests.Orchestration;

/// <summary>Every start-up problem of `oserve serve` is one line on stderr and exit code 2, never a stack trace.</summary>
public sealed class ServeStartupTests
{
    private static async Task<(int Code, string Err)> ServeAsync(params string[] args)
    {
        var error = new StringWriter();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60)); // a server that did start must not hang the test
        int code = await OServeCli.RunAsync(["serve", .. args], new StringWriter(), error).WaitAsync(stop.Token);
        return (code, error.ToString());
    }

    private static void AssertOneLine(string error)
    {
        var lines = error.Trim().Split('\n');
        Assert.True(lines.Length == 1, $"expected one line, got:\n{error}");
        Assert.StartsWith("error ", lines[0]);
        Assert.DoesNotContain(" at ", error);
    }

    [Theory]
    [InlineData("--in-flight drain", "--in-flight, --finish-in-place-steps: only a plan (--plan) switches live")]
    [InlineData("--plan P --in-flight teleport", "--in-flight: 'teleport' is not one of: migrate, drain")]
    [InlineData("--plan P --finish-in-place-steps -1", "--finish-in-place-steps: must be 0 or more, got -1")]
    [InlineData("--plan P --membership localhost --in-flight drain", "across workers the plan controller runs on the workers; give them to `oserve worker`")]
    public async Task Switch_options_without_a_plan_or_with_bad_values_are_one_line_and_exit_2(string args, string message)
    {
        var plan = Path.Combine(AppContext.BaseDirectory, "scenarios", "plans", "builtin-2x-tp1.yaml");
        var (code, error) = await ServeAsync(args.Replace("P", plan).Split(' '));

        Assert.Equal(OServeCli.ExitBadInput, code);
        AssertOneLine(error);
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task The_switch_options_given_reach_the_plan_runtime()
    {
        using var model = OServe.Models.BuiltInModel.Create(new OServe.Models.BuiltInModelOptions { Dim = 64, HiddenDim = 160, NumLayers = 2, NumHeads = 4, NumKvHeads = 2, MaxSeqLen = 512 });
        var plan = Path.Combine(AppContext.BaseDirectory, "scenarios", "plans", "builtin-2x-tp1.yaml");
        var settings = new OServe.Engine.Execution.EngineSettings { MaxNumSeqs = 2, KvCacheGib = 0.02, MaxModelLen = 512 };
        var drain = new OServe.Engine.Orchestration.SwitchOptions { InFlight = OServe.Engine.Orchestration.InFlightPolicy.Drain, FinishInPlaceMaxSteps = 3 };
        var storage = new OServe.Engine.Orchestration.RandomWeightStore(model.Config, 7);
        await using var runtime = ServeCommand.StartPlan(plan, "cpu-logical-4", model, storage, settings, "oserve-builtin-random", new StringWriter(), switching: drain);
        Assert.Equal(drain, runtime.Options.Switch);
    }

    [Fact]
    public async Task A_port_in_use_is_one_line_and_exit_2()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;

        // The built-in model (no --model), a small cache: the engine is built, then binding fails.
        var (code, error) = await ServeAsync("--kv-cache-gib", "0.05", "--max-num-seqs", "2", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(OServeCli.ExitBadInput, code);
        AssertOneLine(error);
        Assert.Contains($"--port {port}: cannot listen there", error);
    }

    [Fact]
    public async Task A_plan_without_replicas_is_one_line_naming_the_file_and_exit_2()
    {
        var dir = Directory.CreateTempSubdirectory("oserve-plan-").FullName;
        var plan = Path.Combine(dir, "empty.yaml");
        File.WriteAllText(plan, "model: oserve-builtin-random\ncluster: cpu-logical-4\nrequest_types: []\nreplicas: []\nrouting: []\n");

        var (code, error) = await ServeAsync("--plan", plan, "--cluster", "cpu-logical-4", "--port", "0");

        Assert.Equal(OServeCli.ExitBadInput, code);
        AssertOneLine(error);
        Assert.Contains("empty.yaml:4 replicas: the plan has no replicas", error);
    }

    [Fact]
    public async Task A_cluster_past_the_bounds_is_one_line_naming_the_field_and_exit_2()
    {
        var dir = Directory.CreateTempSubdirectory("oserve-cluster-").FullName;
        var cluster = Path.Combine(dir, "huge.yaml");
        File.WriteAllText(cluster, "name: cpu-logical-4\ngpu_types:\n  - {name: cpu-logical, memory_gib: 4, tflops: 0.1, hbm_gbps: 20}\nnodes:\n"
            + "  - {name: node0, gpu_type: cpu-logical, gpus: 2147483647, intra_link_gbps: 10}\ninter_node_link_gbps: 1\n");
        var plan = Path.Combine(AppContext.BaseDirectory, "scenarios", "plans", "builtin-2x-tp1.yaml");

        var (code, error) = await ServeAsync("--plan", plan, "--cluster", cluster, "--port", "0");

        Assert.Equal(OServeCli.ExitBadInput, code);
        AssertOneLine(error);
        Assert.Contains("huge.yaml:5 nodes[0].gpus: 2147483647 is above the maximum 1024", error);
    }

    [Fact]
    public async Task A_model_path_that_is_not_a_model_is_one_line_and_exit_2()
    {
        var dir = Directory.CreateTempSubdirectory("oserve-model-").FullName;
        File.WriteAllText(Path.Combine(dir, "weights.bin"), "not a checkpoint");

        var (code, error) = await ServeAsync("--model", dir, "--port", "0");

        Assert.Equal(OServeCli.ExitBadInput, code);
        AssertOneLine(error);
        Assert.Contains($"--model {dir}:", error);
    }
}
