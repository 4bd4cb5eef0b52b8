using OServe.Contracts;
using OServe.Contracts.Yaml;
using OServe.Engine.Execution;
using OServe.Engine.Orchestration;
using OServe.Engine.Serving;
using OServe.Models;
using Orleans;

namespace OServe.Engine.Distributed;

/// <summary>What <c>oserve serve --plan P --membership M</c> needs beyond the single-process server's options.</summary>
public sealed record ClusterFrontEndOptions
{
    public required string PlanPath { get; init; }
    public string? ClusterRef { get; init; }
    public required MembershipSpec Membership { get; init; }
    public string? ClusterId { get; init; }
    public IReadOnlyList<int> GatewayPorts { get; init; } = [30000];
    public FailureDetection FailureDetection { get; init; } = FailureDetection.Default;
}

/// <summary>
/// The front end of a multi-node deployment: an Orleans client of the workers, the plan controller
/// grain (given the plan file unless the cluster already has a plan), and the OpenAI-compatible
/// server over a <see cref="ClusterRuntime"/>, with the cluster's /v1/plan and /v1/cluster.
/// </summary>
public static class ClusterFrontEnd
{
    /// <param name="resolveCluster">Finds the cluster file or built-in cluster by name, relative to the plan's folder.</param>
    /// <param name="model">The model's shape and tokenizer only: the front end runs no replica, so it holds no weights.</param>
    public static async Task RunAsync(ClusterFrontEndOptions options, ServeOptions serve, ModelShape model, TorchSharp.torch.ScalarType dtype, EngineSettings settings, string? servedName,
        Func<string, string, Cluster> resolveCluster, TextWriter output, CancellationToken cancellationToken)
    {
        var plan = ContractYaml.LoadPlan(options.PlanPath);
        var cluster = resolveCluster(options.ClusterRef ?? plan.Value.Cluster, Path.GetDirectoryName(Path.GetFullPath(options.PlanPath))!);
        var card = ModelCardOf.Llama(model.Config, servedName ?? model.Name, dtype);
        IReadOnlyList<ContractError> Validate(Plan p, SourceMap lines) => ClusterPlanChecks.Validate(p, cluster, card, model.Config, lines);
        var errors = Validate(plan.Value, plan.Lines);
        if (errors.Count > 0) throw new ContractException(errors);
        int maxModelLength = LocalEngineBuilder.SchedulerConfigFor(model.Config, dtype, settings).MaxModelLen;

        var clusterId = options.ClusterId ?? cluster.Name;
        using var clientHost = ClusterHosting.BuildFrontEndClient(new FrontEndHostOptions
        {
            ClusterId = clusterId, Membership = options.Membership, GatewayPorts = options.GatewayPorts, FailureDetection = options.FailureDetection,
        });
        output.WriteLine($"front end of cluster {clusterId} ({options.Membership}): connecting to the workers");
        await clientHost.StartAsync(cancellationToken);
        var client = clientHost.Services.GetRequiredService<IClusterClient>();
        var logger = clientHost.Services.GetRequiredService<ILoggerFactory>().CreateLogger("OServe.FrontEnd");
        await using var runtime = await ClusterRuntime.StartAsync(client, clusterId, plan.Value, new ModelTokenizer(model.Tokenizer),
            servedName ?? model.Name, maxModelLength, new FrontEndOptions(), logger);
        output.WriteLine($"plan in force: epoch {runtime.View.Epoch}, {(runtime.Deployment is { } d ? string.Join(", ", d.Replicas) : "no replica up yet")}");
        await ServerHost.RunAsync(serve, runtime, cancellationToken: cancellationToken,
            mapEndpoints: app => ClusterPlanEndpoints.Map(app, runtime, Validate));
        await clientHost.StopAsync(CancellationToken.None);
    }
}
