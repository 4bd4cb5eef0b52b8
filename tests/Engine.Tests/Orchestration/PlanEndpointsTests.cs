using System.Net;
using System.Text;
using System.Text.Json;
using OServe.Contracts.Yaml;
using OServe.Engine.Serving;
using Xunit;
using static OServe.Engine.Tests.Orchestration.OrchestrationTestKit;

namespace OServe.Engine.Tests.Orchestration;

public sealed class PlanEndpointsTests
{
    private static StringContent Yaml(string text) => new(text, Encoding.UTF8, "text/yaml");

    [Fact]
    public async Task Get_returns_the_plan_in_force_as_yaml_and_put_applies_a_new_one()
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas());
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app) };

        var current = ContractYaml.ParsePlan(await http.GetStringAsync("/v1/plan")).Value;
        Assert.Equal(1, current.Version);
        Assert.Equal(["a", "b"], current.Replicas.Select(r => r.Id));

        using var put = await http.PutAsync("/v1/plan", Yaml(ContractYaml.Write(OneReplica(5))));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        using var report = JsonDocument.Parse(await put.Content.ReadAsStringAsync());
        Assert.Equal("applied", report.RootElement.GetProperty("outcome").GetString());
        Assert.Equal(5, ContractYaml.ParsePlan(await http.GetStringAsync("/v1/plan")).Value.Version);
    }

    [Theory]
    // Unknown device: the cluster has node0/0..3.
    [InlineData("devices: [node0/9]", "request-body:", "replicas[0].devices[0]", "does not exist")]
    // Routing to a replica the plan does not have.
    [InlineData("weights: {zz: 1}", "request-body:", "routing[0].weights.zz", "not a replica")]
    // Valid for the cluster, but tp=3 cannot split the model's 4 attention heads.
    [InlineData("tp3", "request-body:", "replicas[0].tp", "does not divide the model's 4 attention heads")]
    // A stale plan (version 0, or the version in force) must not replace a newer one.
    [InlineData("version 0", "request-body:", "version", "0 does not increase on the plan in force (v1)")]
    [InlineData("version 1", "request-body:", "version", "1 does not increase on the plan in force (v1)")]
    // Not YAML at all.
    [InlineData("{{{", "request-body:", "", "invalid YAML")]
    public async Task A_bad_plan_is_a_400_with_file_line_messages_and_the_plan_in_force_keeps_serving(string change, string where, string field, string message)
    {
        using var model = TinyModel();
        await using var runtime = Start(model, TwoReplicas());
        await using var app = await ServeAsync(runtime);
        using var http = new HttpClient { BaseAddress = ServerHost.BoundAddress(app) };
        string yaml = change switch
        {
            "devices: [node0/9]" => ContractYaml.Write(OneReplica(2) with { Replicas = [Replica("c", "node0/9")] }),
            "weights: {zz: 1}" => ContractYaml.Write(OneReplica(2) with
            {
                Routing = [new() { Type = "short", Weights = new Dictionary<string, double> { ["zz"] = 1 } }],
            }),
            "tp3" => ContractYaml.Write(OneReplica(2) with { Replicas = [Replica("c", "node0/1", "node0/2", "node0/3")] }),
            "version 0" => ContractYaml.Write(OneReplica(0)),
            "version 1" => ContractYaml.Write(OneReplica(1)),
            _ => change,
        };

        using var put = await http.PutAsync("/v1/plan", Yaml(yaml));

        Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        using var body = JsonDocument.Parse(await put.Content.ReadAsStringAsync());
        var text = body.RootElement.GetProperty("error").GetProperty("message").GetString()!;
        Assert.Contains(where, text);
        Assert.Contains(field, text);
        Assert.Contains(message, text);
        Assert.Matches(@"request-body:\d+", text);
        Assert.Equal(1, runtime.Current.Version);
        Assert.Equal(1, ContractYaml.ParsePlan(await http.GetStringAsync("/v1/plan")).Value.Version);
        Assert.Equal(["length"], (await StreamAsync(http, Prompt(3), 4)).FinishReasons);
    }
}
